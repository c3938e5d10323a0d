/**
 * A web page must not be a way in (docs/security.md): a foreign Host (DNS rebinding), a cross-site form post and a
 * cross-site JSON post are refused with 403 naming the option to set; the page, the openai SDK and curl-style
 * clients (no Origin) keep working; allowed hosts and origins pass. Plus the /docs pages' headers and redirect.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { expectOpenAIError, metricValue, rawExchange, rawRequest } from './helpers.js';

const chatBody = JSON.stringify({ model: 'parlance-scripted', max_tokens: 3, messages: [{ role: 'user', content: 'one two three' }] });

async function generations(url: string): Promise<number> {
  return metricValue(await (await fetch(`${url}/metrics`)).text(), 'parlance_generations_total');
}

describe('with the default set-up (loopback, no key)', () => {
  let server: TestServer;
  let hostPort: string;
  beforeAll(async () => {
    server = await startTestServer({ embedded: false, scripted: true });
    hostPort = new URL(server.url).host;
  });
  afterAll(async () => server.stop());

  it('refuses a Host header that names another site (DNS rebinding), on the API and on the page', async () => {
    for (const [method, path] of [
      ['GET', '/api/conversations'],
      ['GET', '/'],
      ['GET', '/v1/models'],
      ['POST', '/api/conversations'],
    ] as const) {
      for (const host of ['evil.example', `evil.example:${new URL(server.url).port}`, 'localhost.evil.example', '127.0.0.1.nip.io', 'bad host']) {
        const response = await rawExchange(server.url, rawRequest(method, path, method === 'POST' ? '{}' : undefined, { host }));
        expect(response.status, `${method} ${path} Host: ${host}`).toBe(403);
        const body = expectOpenAIError(JSON.parse(response.body), 'host_not_allowed');
        expect(body.error.message).toContain('--allowed-hosts');
      }
    }
  });

  it('answers loopback names and IP addresses, with or without a port', async () => {
    for (const host of [hostPort, '127.0.0.1', `localhost:${new URL(server.url).port}`, 'LOCALHOST', 'localhost.', 'app.localhost', '[::1]:8000', '10.0.0.7', undefined]) {
      const response = await rawExchange(server.url, host === undefined ? rawRequest('GET', '/api/conversations', undefined) : rawRequest('GET', '/api/conversations', undefined, { host }));
      expect(response.status, `Host: ${host}`).toBe(200);
    }
  });

  it('refuses a cross-site form post to /completion before any generation starts', async () => {
    const before = await generations(server.url);
    const response = await rawExchange(
      server.url,
      rawRequest('POST', '/completion', 'prompt=hello+there&model=parlance-scripted', { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example', host: hostPort }),
    );
    expect(response.status).toBe(403);
    const body = expectOpenAIError(JSON.parse(response.body), 'origin_not_allowed');
    expect(body.error.message).toContain('--cors-origin');
    expect(await generations(server.url)).toBe(before);
  });

  it('refuses cross-site JSON posts and writes on every state-changing route, opaque origins included', async () => {
    const created = (await (await fetch(`${server.url}/api/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()) as { id: string };
    const before = await generations(server.url);
    for (const origin of ['http://evil.example', 'null', `http://${hostPort}.evil.example`, `https://localhost:1`, 'not a url']) {
      for (const [method, path, body] of [
        ['POST', '/v1/chat/completions', chatBody],
        ['POST', '/api/conversations', '{}'],
        ['PATCH', `/api/conversations/${created.id}`, '{"title":"owned"}'],
        ['DELETE', `/api/conversations/${created.id}`, undefined],
        ['POST', `/api/conversations/${created.id}/messages`, '{"content":"hi"}'],
      ] as const) {
        const response = await fetch(`${server.url}${path}`, { method, headers: { origin, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body }) });
        expect(response.status, `${method} ${path} Origin: ${origin}`).toBe(403);
        expectOpenAIError(await response.json(), 'origin_not_allowed');
      }
    }
    expect(await generations(server.url)).toBe(before);
    const still = (await (await fetch(`${server.url}/api/conversations/${created.id}`)).json()) as { conversation: { title: string } };
    expect(still.conversation.title).not.toBe('owned');
  });

  it('refuses them on every dialect, each in its own error shape', async () => {
    for (const [path, body] of [
      ['/v1/messages', { model: 'parlance-scripted', max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] }],
      ['/api/chat', { model: 'parlance-scripted', messages: [{ role: 'user', content: 'hi' }] }],
      ['/v1/responses', { model: 'parlance-scripted', input: 'hi' }],
    ] as const) {
      const cross = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://evil.example' }, body: JSON.stringify(body) });
      const text = await cross.text();
      expect(cross.status, `${path}: ${text}`).toBe(403);
      expect(text, path).toContain('--cors-origin');
      const foreignHost = await rawExchange(server.url, rawRequest('POST', path, JSON.stringify(body), { host: 'evil.example' }));
      expect(foreignHost.status, path).toBe(403);
      expect(foreignHost.body, path).toContain('--allowed-hosts');
    }
  });

  it('lets a cross-site page read nothing: a GET is answered without CORS headers', async () => {
    const response = await fetch(`${server.url}/api/conversations`, { headers: { origin: 'http://evil.example' } });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('keeps the page (same origin), the openai SDK and curl-style clients working', async () => {
    const sameOrigin = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', origin: server.url }, body: chatBody });
    expect(sameOrigin.status).toBe(200);
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'parlance-scripted', messages: [{ role: 'user', content: 'one two three' }] });
    expect(completion.choices[0]?.message.content).toBe('one two three');
    const curl = await rawExchange(server.url, rawRequest('POST', '/v1/chat/completions', chatBody, { host: hostPort, 'user-agent': 'curl/8.5.0' }));
    expect(curl.status).toBe(200);
  });

  it('gives /docs the page security headers and no redirect loop', async () => {
    const page = await fetch(`${server.url}/docs/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const asset = await fetch(`${server.url}/docs/static/swagger-ui.css`);
    expect(asset.headers.get('x-content-type-options')).toBe('nosniff');
    for (const path of ['/docs/static/index.html', '/docs/static/index.html?x=1']) {
      const redirect = await fetch(`${server.url}${path}`, { redirect: 'manual' });
      expect(redirect.status, path).toBe(302);
      const location = redirect.headers.get('location') ?? '';
      expect(new URL(location, server.url).pathname, path).toBe('/docs/');
      const followed = await fetch(`${server.url}${path}`);
      expect(followed.status, path).toBe(200);
    }
  });
});

describe('with allowed hosts and origins configured', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ embedded: false, scripted: true, allowedHosts: ['chat.example, .corp.example'], corsOrigins: ['https://app.example'] });
  });
  afterAll(async () => server.stop());

  it('answers the names allowed, a domain and its subdomains, and still refuses the rest', async () => {
    for (const host of ['chat.example', 'chat.example:443', 'corp.example', 'a.b.corp.example']) {
      expect((await rawExchange(server.url, rawRequest('GET', '/api/conversations', undefined, { host }))).status, host).toBe(200);
    }
    for (const host of ['evil.example', 'xcorp.example', 'chat.example.evil']) {
      expect((await rawExchange(server.url, rawRequest('GET', '/api/conversations', undefined, { host }))).status, host).toBe(403);
    }
  });

  it('lets the CORS origin and pages under an allowed host post, and no other origin', async () => {
    for (const origin of ['https://app.example', 'https://chat.example', 'https://x.corp.example']) {
      const response = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', origin }, body: chatBody });
      expect(response.status, origin).toBe(200);
      if (origin === 'https://app.example') expect(response.headers.get('access-control-allow-origin')).toBe(origin);
    }
    const refused = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://app.example.evil' }, body: chatBody });
    expect(refused.status).toBe(403);
  });
});
