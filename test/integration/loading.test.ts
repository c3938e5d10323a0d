/**
 * The server listens before its engines are ready (a first start may download a model for minutes).
 * While they load, `/health` says so, `/ready` and generations answer 503 with Retry-After, and when
 * loading ends everything serves; a load that fails closes the port instead of serving nothing.
 * The slow load is an upstream whose model list is held back: nothing of ours is faked.
 */
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startWhileLoading, type LoadingServer } from '../fixtures/held-load.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';

let loading: LoadingServer | undefined;
let server: TestServer | undefined;
afterEach(async () => {
  loading?.release();
  await server?.stop();
  await loading?.upstream.close();
  server = undefined;
  loading = undefined;
});

describe('start-up while the engines load', () => {
  it('answers /ready and model requests 503 with Retry-After until loaded, then serves', async () => {
    loading = await startWhileLoading('slow-model');
    const base = loading.url;

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    const healthBody = (await health.json()) as { loading: boolean; notices: { message: string }[] };
    expect(healthBody.loading).toBe(true);
    expect(healthBody.notices[0]?.message).toMatch(/loading its model/);

    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(503);
    expect(ready.headers.get('retry-after')).toBe('5');
    expect(await ready.json()).toMatchObject({ ready: false, checks: { loaded: false, store: true } });

    const early = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(early.status).toBe(503);
    expect(early.headers.get('retry-after')).toBe('5');
    expect(((await early.json()) as { error: { message: string } }).error.message).toMatch(/still loading/);

    // A conversation can be opened, but a message to it gets the same answer, and is not stored half-way.
    const created = await fetch(`${base}/api/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const send = await fetch(`${base}/api/conversations/${id}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: 'hello' }) });
    expect(send.status).toBe(503);
    expect(send.headers.get('retry-after')).toBe('5');
    const tree = (await (await fetch(`${base}/api/conversations/${id}`)).json()) as { messages: unknown[] };
    expect(tree.messages).toEqual([]);

    loading.release();
    server = await loading.started;
    expect(server.url).toBe(base);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    expect(((await (await fetch(`${base}/health`)).json()) as { loading: boolean }).loading).toBe(false);
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'slow-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]?.message.content).toBeTruthy();
    // Once loaded, a model nobody serves is a 404 again, not "still loading".
    await expect(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 404 });
  });

  it('closes the port when loading fails, rather than serving nothing', async () => {
    let listening!: (url: string) => void;
    const url = new Promise<string>((resolve) => (listening = resolve));
    const started = startTestServer({ model: '/nonexistent/model.gguf' }, { onListening: listening });
    const base = await url;
    await expect(started).rejects.toThrow(/nonexistent/);
    await expect(fetch(`${base}/health`)).rejects.toThrow();
  });
});
