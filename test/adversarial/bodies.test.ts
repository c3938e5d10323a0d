/**
 * Hostile request bodies against a real server (embedded llama.cpp on the tiny GGUF, plus the scripted
 * echo model whose replies show exactly what the engine was given): oversized and compressed bodies,
 * broken and malicious JSON, text that is not valid Unicode, headers past Node's limit. Each gets its
 * status and an OpenAI-shaped body; after each, the engines are idle and the server still serves.
 */
import { gzipSync, deflateSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationRecord, ConversationTree } from '../../src/protocol/conversations.js';
import { noShedding, parseSse, startTestServer, type TestServer } from '../fixtures/server.js';
import { expectOpenAIError, expectSettled, openSocket, postJson, rawExchange, rawRequest } from './helpers.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ scripted: true, ...noShedding });
});
afterAll(async () => server.stop());
afterEach(async () => expectSettled(server.url));

const scripted = 'parlance-scripted';
const chat = (content: unknown, extra: Record<string, unknown> = {}) => ({ model: scripted, messages: [{ role: 'user', content }], ...extra });
const send = (path: string, body: Buffer | string, headers: Record<string, string> = {}) => rawExchange(server.url, rawRequest('POST', path, body, headers));
const parse = (body: string): unknown => JSON.parse(body);

interface ChatCompletion {
  choices: { message: { content: string } }[];
}

describe('body size and encoding', () => {
  it('refuses a body past the 1 MiB limit with 413, whether it declares its length or is chunked', async () => {
    const big = JSON.stringify(chat('x'.repeat(1 << 20)));
    const declared = await send('/v1/chat/completions', big);
    expect(declared.status).toBe(413);
    expectOpenAIError(parse(declared.body), 'payload_too_large');

    // No Content-Length: the limit is counted on the bytes as they arrive.
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const chunks = Array.from({ length: 6 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
    const chunked = await rawExchange(server.url, Buffer.concat([Buffer.from(head), ...chunks, Buffer.from('0\r\n\r\n')]));
    expect(chunked.status).toBe(413);
    expectOpenAIError(parse(chunked.body), 'payload_too_large');

    // Just under the limit is fine.
    const fits = await postJson(`${server.url}/v1/chat/completions`, chat('y'.repeat((1 << 20) - 200), { max_tokens: 1 }));
    expect(fits.status).toBe(200);
  });

  it('refuses compressed bodies (a gzip bomb among them) with 415 before reading them', async () => {
    // 16 MiB of spaces in 16 KiB of gzip: inflating it would blow far past the body limit.
    const bomb = gzipSync(Buffer.alloc(16 << 20, 0x20), { level: 9 });
    expect(bomb.length).toBeLessThan(1 << 20);
    const rssBefore = process.memoryUsage().rss;
    for (const [encoding, body] of [['gzip', bomb], ['deflate', deflateSync(Buffer.from(JSON.stringify(chat('hi'))))], ['br', Buffer.from('x')], ['GZIP', bomb]] as const) {
      const response = await send('/v1/chat/completions', body, { 'content-encoding': encoding });
      expect(response.status, encoding).toBe(415);
      expectOpenAIError(parse(response.body), 'unsupported_media_type');
    }
    // The refusal comes from the header: nothing was inflated (the server runs in this process).
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(48 << 20);
    const identity = await send('/v1/chat/completions', JSON.stringify(chat('plain', { max_tokens: 1 })), { 'content-encoding': 'identity' });
    expect(identity.status).toBe(200);
  });

  it('answers headers past 16 KiB with 431 in the OpenAI error shape, and a malformed request line with 400', async () => {
    const response = await rawExchange(server.url, `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(response.status).toBe(431);
    expectOpenAIError(parse(response.body), 'invalid_request');

    const garbage = await rawExchange(server.url, 'NOT HTTP AT ALL\r\n\r\n');
    expect(garbage.status).toBe(400);
    expectOpenAIError(parse(garbage.body), 'invalid_request');

    const badPath = await rawExchange(server.url, rawRequest('GET', '/v1/models/%E0%A4%A', undefined));
    expect(badPath.status).toBe(400);
    expectOpenAIError(parse(badPath.body), 'invalid_request');
  });
});

describe('methods and paths', () => {
  it('answers a served path with the wrong method 405 and an Allow header; an unknown path 404', async () => {
    const wrongMethod = await rawExchange(server.url, rawRequest('GET', '/v1/chat/completions', undefined));
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers['allow']).toBe('POST');
    expectOpenAIError(parse(wrongMethod.body), 'method_not_allowed');

    // A parametric route: the path matches, the method does not.
    const putMessages = await rawExchange(server.url, rawRequest('PUT', '/api/conversations/some-id/messages', '{}', { 'content-type': 'application/json' }));
    expect(putMessages.status).toBe(405);
    expect(putMessages.headers['allow']?.split(', ')).toContain('POST');

    const deleteModels = await fetch(`${server.url}/v1/models`, { method: 'DELETE' });
    expect(deleteModels.status).toBe(405);
    expect(deleteModels.headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'HEAD']);
    expectOpenAIError(await deleteModels.json(), 'method_not_allowed');

    // A path under a route that serves the method but finds nothing there (a missing asset) is a 404.
    const missingAsset = await fetch(`${server.url}/assets/no-such-file.js`);
    expect(missingAsset.status).toBe(404);
    expect(missingAsset.headers.get('allow')).toBeNull();

    const unknown = await rawExchange(server.url, rawRequest('POST', '/v1/nothing-here', '{}', { 'content-type': 'application/json' }));
    expect(unknown.status).toBe(404);
    expectOpenAIError(parse(unknown.body), 'not_found');
  });
});

describe('malformed and malicious JSON', () => {
  it.each([
    ['truncated', '{"model": "parlance-scripted", "messages": ['],
    ['trailing garbage', `${JSON.stringify(chat('hi'))} extra`],
    ['NaN', '{"model":"parlance-scripted","max_tokens":NaN,"messages":[{"role":"user","content":"hi"}]}'],
    ['Infinity', '{"model":"parlance-scripted","temperature":Infinity,"messages":[{"role":"user","content":"hi"}]}'],
    ['single quotes', "{'model': 'parlance-scripted'}"],
    ['a lone BOM', '\uFEFF'],
    ['empty', ''],
  ])('answers %s JSON with 400 invalid_request', async (_name, body) => {
    const response = await send('/v1/chat/completions', body);
    expect(response.status).toBe(400);
    expectOpenAIError(parse(response.body), 'invalid_request');
  });

  it.each([['null'], ['[]'], ['"a string"'], ['42'], ['true']])('answers a JSON %s where an object belongs with 400', async (body) => {
    for (const path of ['/v1/chat/completions', '/v1/completions', '/api/conversations']) {
      const response = await send(path, body);
      expect(response.status, path).toBe(400);
      expectOpenAIError(parse(response.body), 'invalid_request');
    }
  });

  it('parses large bodies that arrive together one by one, each intact: broken ones refused, abandoned ones skipped', async () => {
    // Large bodies take turns on the event loop; each must still get its own answer.
    const words = (index: number) => Array.from({ length: 30_000 }, (_, word) => `w${index}-${word}`).join(' ');
    const bodies = Array.from({ length: 5 }, (_, index) => JSON.stringify(chat(words(index), { max_tokens: 2 })));
    const broken = `${bodies[0]?.slice(0, -2)}`;
    const abandoned = await openSocket(server.url);
    abandoned.end(rawRequest('POST', '/v1/chat/completions', bodies[1] ?? ''), () => abandoned.destroy());
    const answers = await Promise.all([...bodies, broken].map((body) => send('/v1/chat/completions', body)));
    answers.slice(0, 5).forEach((answer, index) => {
      expect(answer.status, answer.body.slice(0, 300)).toBe(200);
      // The scripted model echoes the prompt: its first words show whose body this answer was parsed from.
      expect((parse(answer.body) as ChatCompletion).choices[0]?.message.content).toBe(`w${index}-0 w${index}-1`);
    });
    expect(answers[5]?.status).toBe(400);
    expectOpenAIError(parse(answers[5]?.body ?? ''), 'invalid_request');
  });

  it('survives JSON nested 100,000 deep: ignored where unknown, refused where a field is', async () => {
    const deepArray = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const deepObject = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const ignored = await send('/v1/chat/completions', `{"model":"${scripted}","max_tokens":2,"extra":${deepArray},"messages":[{"role":"user","content":"still here"}]}`);
    expect(ignored.status).toBe(200);
    expect((parse(ignored.body) as ChatCompletion).choices[0]?.message.content).toBe('still here');

    const inContent = await send('/v1/chat/completions', `{"model":"${scripted}","messages":[{"role":"user","content":${deepArray}}]}`);
    expect(inContent.status).toBe(400);
    expectOpenAIError(parse(inContent.body), 'invalid_request', 'messages[0].content[0]');

    const inSettings = await send('/api/conversations', `{"settings":${deepObject}}`);
    expect(inSettings.status).toBe(400);
    expectOpenAIError(parse(inSettings.body), 'invalid_request');
  });

  it('refuses __proto__ and constructor.prototype keys, at the top or nested, and nothing is polluted', async () => {
    const bodies = [
      `{"__proto__":{"polluted":true},"model":"${scripted}","messages":[{"role":"user","content":"hi"}]}`,
      `{"model":"${scripted}","messages":[{"role":"user","content":"hi","__proto__":{"polluted":true}}]}`,
      `{"constructor":{"prototype":{"polluted":true}},"model":"${scripted}","messages":[{"role":"user","content":"hi"}]}`,
    ];
    for (const body of bodies) {
      for (const path of ['/v1/chat/completions', '/api/conversations', '/completion']) {
        const response = await send(path, body);
        expect(response.status, `${path} ${body}`).toBe(400);
        expectOpenAIError(parse(response.body), 'invalid_request');
      }
      // The seed's echo keeps FastAPI's answer to a body it cannot decode.
      const seed = await send('/prompt_data', body);
      expect(seed.status).toBe(422);
    }
    expect((Object.prototype as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('text that is not valid Unicode', () => {
  // The rule: invalid UTF-8 bytes and lone UTF-16 surrogates both become U+FFFD on the way in, so the engine,
  // the store and every reply see one well-formed string. Nothing is refused for it, nothing fails.
  const replacement = '\uFFFD';

  async function nonStreamedEcho(body: Buffer | string): Promise<string> {
    const response = await send('/v1/chat/completions', body);
    expect(response.status).toBe(200);
    return (parse(response.body) as ChatCompletion).choices[0]?.message.content ?? '';
  }

  async function streamedEcho(body: Buffer | string): Promise<string> {
    const response = await send('/v1/chat/completions', body);
    expect(response.status).toBe(200);
    const events = parseSse(response.body).filter((event) => event.data !== '[DONE]');
    return events.map((event) => (JSON.parse(event.data) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '').join('');
  }

  it('replaces invalid UTF-8 bytes with U+FFFD, streamed or not', async () => {
    const withBytes = (stream: boolean) => {
      const [before, after] = JSON.stringify(chat('a@@b', { stream })).split('@@') as [string, string];
      // A stray continuation byte, an overlong encoding, and a truncated 3-byte sequence.
      return Buffer.concat([Buffer.from(before), Buffer.from([0x80, 0xc0, 0xaf, 0xe2, 0x82]), Buffer.from(after)]);
    };
    const whole = await nonStreamedEcho(withBytes(false));
    expect(whole.startsWith('a')).toBe(true);
    expect(whole.endsWith('b')).toBe(true);
    expect(whole.slice(1, -1)).toMatch(/^\uFFFD+$/);
    expect(await streamedEcho(withBytes(true))).toBe(whole);
  });

  it('replaces lone surrogate escapes with U+FFFD, streamed or not, and keeps real pairs', async () => {
    const body = (stream: boolean) => JSON.stringify(chat('a@1b@2c@3d', { stream })).replace('@1', '\\ud800').replace('@2', '\\udfff').replace('@3', '\\ud83d\\ude00');
    const expected = `a${replacement}b${replacement}c😀d`;
    expect(await nonStreamedEcho(body(false))).toBe(expected);
    expect(await streamedEcho(body(true))).toBe(expected);
    // In a key, too: the unknown key is dropped as any unknown key is.
    const inKey = await send('/v1/chat/completions', `{"\\udc00":1,"model":"${scripted}","max_tokens":1,"messages":[{"role":"user","content":"k"}]}`);
    expect(inKey.status).toBe(200);
  });

  it('stores what it streamed: a conversation message with both kinds is saved and echoed as the same text', async () => {
    const conversation = (await (await postJson(`${server.url}/api/conversations`, { model: scripted })).json()) as ConversationRecord;
    // x, an invalid byte, y, a lone surrogate escape, z.
    const body = Buffer.concat([Buffer.from('{"content":"x'), Buffer.from([0xff]), Buffer.from('y\\ud800z"}')]);
    const response = await send(`/api/conversations/${conversation.id}/messages`, body);
    expect(response.status).toBe(200);
    const done = parseSse(response.body).find((event) => event.event === 'done');
    expect(done).toBeDefined();
    const tree = (await (await fetch(`${server.url}/api/conversations/${conversation.id}`)).json()) as ConversationTree;
    const user = tree.messages.find((message) => message.role === 'user');
    const reply = tree.messages.find((message) => message.role === 'assistant');
    expect(user?.content).toBe(`x${replacement}y${replacement}z`);
    expect(reply).toMatchObject({ status: 'complete', content: user?.content });
  });
});
