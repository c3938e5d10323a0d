import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSse, startTestServer, type TestServer } from '../fixtures/server.js';

let server: TestServer;

beforeAll(async () => {
  // The scripted model echoes the prompt, so the bytes on the wire are predictable.
  server = await startTestServer({ scripted: true, embedded: false });
});
afterAll(async () => server.stop());

const post = (path: string, init: RequestInit) => fetch(`${server.url}${path}`, { method: 'POST', ...init });

describe('POST /completion (seed parity)', () => {
  it('streams the reply as SSE, byte for byte, one data line per text line, ending with an end event', async () => {
    const response = await post('/completion', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'two words\nnext line' }) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    expect(response.headers.get('content-encoding')).toBeNull();
    const raw = await response.text();
    // The echo engine emits 'two', ' words', '\nnext', ' line': the newline splits one event into two data lines.
    expect(raw).toBe('data: two\n\ndata:  words\n\ndata: \ndata: next\n\ndata:  line\n\nevent: end\ndata: {"finish_reason":"stop"}\n\n');
    const events = parseSse(raw);
    const text = events.filter((e) => e.event === 'message').map((e) => e.data).join('');
    expect(text).toBe('two words\nnext line');
  });

  it('accepts the seed page form, urlencoded and multipart', async () => {
    const urlencoded = await post('/completion', { body: new URLSearchParams({ prompt: 'hello there' }) });
    expect(parseSse(await urlencoded.text()).filter((e) => e.event === 'message').map((e) => e.data).join('')).toBe('hello there');
    const form = new FormData();
    form.set('prompt', 'from a form');
    const multipart = await post('/completion', { body: form });
    expect(parseSse(await multipart.text()).filter((e) => e.event === 'message').map((e) => e.data).join('')).toBe('from a form');
  });

  it('answers a missing prompt with a 400 naming the field', async () => {
    const response = await post('/completion', { body: new URLSearchParams({ other: 'x' }) });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { param: 'prompt', code: 'invalid_request' } });
  });
});

describe('GET /stream-example', () => {
  it('streams the seed tokens in order, with the seed delays between them', async () => {
    const started = performance.now();
    const response = await fetch(`${server.url}/stream-example`);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    const arrivals: number[] = [];
    let raw = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      arrivals.push(performance.now() - started);
      raw += value;
    }
    const tokens = parseSse(raw).filter((e) => e.event === 'message').map((e) => e.data);
    expect(tokens).toEqual(['Hello', ' ', 'world', '!', ' This', ' is', ' streamed', '.']);
    expect(parseSse(raw).at(-1)?.event).toBe('end');
    // Delays 0.1 s × (1 + i mod 3) add up to 1.5 s, and the text arrives in many pieces, not at once.
    expect(arrivals.at(-1)!).toBeGreaterThanOrEqual(1400);
    expect(arrivals.length).toBeGreaterThanOrEqual(8);
  });
});

describe('POST /prompt_data', () => {
  const send = (body: string) => post('/prompt_data', { headers: { 'content-type': 'application/json' }, body });

  it('echoes a valid body, without unknown fields', async () => {
    const response = await send(JSON.stringify({ prompt: 'hi', extra: 1 }));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ prompt: 'hi' });
  });

  it('answers a missing field with a FastAPI-style 422', async () => {
    const response = await send(JSON.stringify({ nope: 1 }));
    expect(response.status).toBe(422);
    expect(await response.json()).toEqual({ detail: [{ type: 'missing', loc: ['body', 'prompt'], msg: 'Field required', input: { nope: 1 } }] });
  });

  it('answers a wrong type with a 422 naming the field', async () => {
    const response = await send(JSON.stringify({ prompt: 42 }));
    expect(response.status).toBe(422);
    expect(await response.json()).toEqual({ detail: [{ type: 'string_type', loc: ['body', 'prompt'], msg: 'Input should be a valid string', input: 42 }] });
  });

  it('answers malformed JSON with a 422 too, as FastAPI does', async () => {
    const response = await send('{"prompt": ');
    expect(response.status).toBe(422);
    expect((await response.json()) as unknown).toMatchObject({ detail: [{ type: 'json_invalid' }] });
  });
});

describe('GET /', () => {
  it('serves the chat page with a strict content security policy and its script', async () => {
    const response = await fetch(`${server.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await response.text();
    const script = html.match(/<script type="module"[^>]* src="([^"]+)"/)?.[1];
    expect(script).toBeDefined();
    const js = await fetch(`${server.url}${script}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');
  });
});

describe('SSE keep-alive', () => {
  it('sends a comment while the engine is silent, and the stream still parses', async () => {
    const slow = await startTestServer({ scripted: true, embedded: false, scriptedDelayMs: 250, keepAliveSeconds: 0.05 });
    try {
      const response = await fetch(`${slow.url}/completion`, { method: 'POST', body: new URLSearchParams({ prompt: 'a b' }) });
      const raw = await response.text();
      expect(raw).toContain(': keep-alive\n\n');
      expect(parseSse(raw).filter((e) => e.event === 'message').map((e) => e.data).join('')).toBe('a b');
    } finally {
      await slow.stop();
    }
  });
});
