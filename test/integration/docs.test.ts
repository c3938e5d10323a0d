/**
 * `/docs` as a reader meets it: titled Parlance, routes grouped by dialect, each with a one-line summary,
 * and no framework branding. The grouping is by path (src/http/docs.ts), so every route is checked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/server.js';

interface OpenApi {
  info: { title: string; version: string };
  tags: { name: string }[];
  paths: Record<string, Record<string, { tags?: string[]; summary?: string }>>;
}

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ embedded: false, scripted: true });
});
afterAll(async () => {
  await server?.stop();
});

describe('/docs', () => {
  it('groups every route under its dialect, each with a summary', async () => {
    const spec = (await (await fetch(`${server.url}/docs/json`)).json()) as OpenApi;
    expect(spec.info.title).toBe('Parlance');
    const declared = spec.tags.map((tag) => tag.name);
    const operations = Object.entries(spec.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ path, method, ...operation })));
    expect(operations.length).toBeGreaterThan(20);
    for (const operation of operations) {
      const name = `${operation.method.toUpperCase()} ${operation.path}`;
      expect(operation.tags, name).toHaveLength(1);
      expect(declared, name).toContain(operation.tags?.[0]);
      expect(operation.summary, name).toMatch(/^\S.{5,100}$/);
    }
    const tagOf = (path: string, method: string): string | undefined => spec.paths[path]?.[method]?.tags?.[0];
    expect(tagOf('/v1/chat/completions', 'post')).toBe('OpenAI');
    expect(tagOf('/parlance/api/conversations', 'post')).toBe('Conversations');
    expect(tagOf('/parlance/api/messages/{messageId}/stop', 'post')).toBe('Conversations');
    expect(tagOf('/health', 'get')).toBe('Operations');
    expect(tagOf('/completion', 'post')).toBe('Seed');
    // Static files are no API.
    expect(Object.keys(spec.paths).filter((path) => path.startsWith('/assets/'))).toEqual([]);
  });

  it('is titled Parlance, without Fastify branding', async () => {
    const page = await (await fetch(`${server.url}/docs/`)).text();
    expect(page).toMatch(/<title>Parlance<\/title>/);
    expect(page).toContain('favicon.svg');
    expect(page).not.toContain('favicon-32x32.png');
    // The top bar's mark is ours, put in by the page's initializer in place of the default logo.
    const initializer = await (await fetch(`${server.url}/docs/static/swagger-initializer.js`)).text();
    const logo = /data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)/.exec(initializer)?.[1];
    expect(Buffer.from(logo ?? '', 'base64').toString('utf8')).toContain('>Parlance</text>');
  });
});
