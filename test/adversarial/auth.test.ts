/**
 * API keys against a real server: no key, a wrong key, the key in each header it may come in, keys in
 * places they may not, and paths that spell a protected route another way.
 */
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { expectOpenAIError, expectSettled, jsonHeaders, rawExchange, rawRequest } from './helpers.js';

const key = '0123456789abcdef0123';
const bearer = { authorization: `Bearer ${key}` };
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ embedded: false, scripted: true, apiKeys: [`ci=${key}`, 'other=fedcba9876543210fedcba'] });
});
afterAll(async () => server.stop());
afterEach(async () => expectSettled(server.url, bearer));

const chatBody = JSON.stringify({ model: 'parlance-scripted', max_tokens: 2, messages: [{ role: 'user', content: 'hi there' }] });
/** One request on each protected surface. */
const protectedRequests: [method: string, path: string, body?: string][] = [
  ['GET', '/v1/models'],
  ['GET', '/v1/models/parlance-scripted'],
  ['POST', '/v1/chat/completions', chatBody],
  ['POST', '/v1/completions', JSON.stringify({ model: 'parlance-scripted', prompt: 'hi', max_tokens: 1 })],
  ['GET', '/api/conversations'],
  ['POST', '/api/conversations', '{}'],
  ['GET', '/metrics'],
  ['POST', '/completion', JSON.stringify({ prompt: 'hi', model: 'parlance-scripted' })],
];

async function call(method: string, path: string, body: string | undefined, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const response = await fetch(`${server.url}${path}`, { method, headers: { ...(body === undefined ? {} : jsonHeaders), ...headers }, ...(body === undefined ? {} : { body }) });
  return { status: response.status, body: await response.text() };
}

describe('API keys', () => {
  it.each(protectedRequests)('%s %s: 401 without a key, 401 with a wrong one, served with the key in either header', async (method, path, body) => {
    const none = await call(method, path, body, {});
    expect(none.status).toBe(401);
    expect(expectOpenAIError(JSON.parse(none.body), 'invalid_api_key').error.type).toBe('authentication_error');

    for (const wrong of [{ authorization: 'Bearer not-the-key-at-all-000' }, { 'x-api-key': `${key}x` }, { authorization: `Bearer ${key.slice(0, -1)}` }, { authorization: 'Bearer ' }]) {
      const refused = await call(method, path, body, wrong);
      expect(refused.status, JSON.stringify(wrong)).toBe(401);
      expectOpenAIError(JSON.parse(refused.body), 'invalid_api_key');
    }

    for (const right of [bearer, { authorization: `bearer   ${key}  ` }, { 'x-api-key': key }, { authorization: 'Bearer fedcba9876543210fedcba' }]) {
      const served = await call(method, path, body, right);
      expect(served.status, `${JSON.stringify(right)}: ${served.body.slice(0, 200)}`).toBeLessThan(300);
    }
  });

  it('does not take a key from the query string, a cookie or a Basic header, but takes x-api-key beside a Basic one', async () => {
    expect((await call('GET', `/v1/models?api_key=${key}`, undefined, {})).status).toBe(401);
    expect((await call('GET', '/v1/models', undefined, { cookie: `api_key=${key}` })).status).toBe(401);
    expect((await call('GET', '/v1/models', undefined, { authorization: `Basic ${Buffer.from(`user:${key}`).toString('base64')}` })).status).toBe(401);
    expect((await call('GET', '/v1/models', undefined, { authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': key })).status).toBe(200);
  });

  it('protects a route however its path is spelled', async () => {
    // The router decodes percent-escapes (and these reach real routes); the key check must see the route, not the text.
    for (const path of ['/%761/models', '/v1/%6dodels', '/%61pi/conversations', '/%6detrics', '/v1/models/parlance%2Dscripted', '/%63ompletion']) {
      const method = path.includes('ompletion') ? 'POST' : 'GET';
      const response = await rawExchange(server.url, rawRequest(method, path, method === 'POST' ? JSON.stringify({ prompt: 'x', model: 'parlance-scripted' }) : undefined));
      expect(response.status, path).toBe(401);
      expectOpenAIError(JSON.parse(response.body), 'invalid_api_key');
    }
  });

  it('answers 401, not 404 or 405, to a route spelled another way with the wrong method: no key, no map of the API', async () => {
    for (const [method, path] of [
      ['DELETE', '/%761/models'],
      ['PUT', '/v1/%6dodels'],
      ['POST', '/%61pi/conversations/abc/export'],
      ['PATCH', '/%6detrics'],
      ['GET', '/%63ompletion'],
      ['GET', '/v1/no-such-route'],
      ['GET', '/%64ocs/json'],
    ] as const) {
      const response = await rawExchange(server.url, rawRequest(method, path, undefined));
      expect(response.status, `${method} ${path}`).toBe(401);
      expect(response.headers['allow'], `${method} ${path}`).toBeUndefined();
      // What nothing serves under /api is answered in Ollama's shape, which owns /api (docs/decisions/api-prefix.md).
      if (path.startsWith('/%61pi/')) expect(JSON.parse(response.body)).toEqual({ error: expect.stringContaining('API key') });
      else expectOpenAIError(JSON.parse(response.body), 'invalid_api_key');
    }
    // With the key, the same request learns what it may: the route exists, for other methods.
    const keyed = await rawExchange(server.url, rawRequest('PUT', '/%761/models', '{}', bearer));
    expect(keyed.status).toBe(405);
    expect(keyed.headers['allow']).toContain('GET');
  });

  it('puts /docs and its OpenAPI document behind the key', async () => {
    for (const path of ['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/static/swagger-ui.css']) {
      const none = await fetch(`${server.url}${path}`, { redirect: 'manual' });
      expect(none.status, path).toBe(401);
      expectOpenAIError(await none.json(), 'invalid_api_key');
    }
    const spec = await fetch(`${server.url}/docs/json`, { headers: bearer });
    expect(spec.status).toBe(200);
    expect(((await spec.json()) as { openapi: string }).openapi).toMatch(/^3\./);
    const page = await fetch(`${server.url}/docs/`, { headers: bearer });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('swagger-ui');
  });

  it('leaves the page, /health and /ready public', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    expect((await fetch(`${server.url}/`)).status).toBe(200);
    const health = (await (await fetch(`${server.url}/health`)).json()) as { auth: { required: boolean } };
    expect(health.auth.required).toBe(true);
  });

  it('the official client gets AuthenticationError with a wrong key and answers with the right one', async () => {
    const wrong = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-wrong-wrong-wrong-wrong', maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const right = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, maxRetries: 0 });
    const stream = await right.chat.completions.create({ model: 'parlance-scripted', stream: true, messages: [{ role: 'user', content: 'one two three' }] });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('one two three');
  });
});
