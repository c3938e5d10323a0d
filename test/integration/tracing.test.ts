/**
 * OpenTelemetry traces (`--otlp-endpoint`): the real server exports through the SDK to a fake OTLP/HTTP
 * collector. A span per request with the generation's engine, model, tokens and TTFT, in every dialect; the
 * relay's upstream call as its child, whose `traceparent` the upstream receives; an incoming `traceparent`
 * honoured; a collector that is down costs requests nothing; without the option nothing of the SDK loads.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../fixtures/cli.js';
import { CLIENT_SPAN, SERVER_SPAN, startFakeCollector, type CollectedSpan, type FakeCollector } from '../fixtures/fake-collector.js';
import { refusedPort, startFakeUpstream, streamPlan, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

const post = (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

/** A request's server span, told apart from others by its route and (each test sends its own) its trace id. */
const serverSpan = (route: string, traceId?: string) => (span: CollectedSpan) =>
  span.kind === SERVER_SPAN && span.attributes['http.route'] === route && (traceId === undefined || span.traceId === traceId);

/** A W3C traceparent: version, trace id, parent span id, flags. */
function parseTraceparent(header: string | string[] | undefined): { traceId: string; parentId: string } {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(header));
  if (!match) throw new Error(`not a traceparent: ${String(header)}`);
  return { traceId: match[1]!, parentId: match[2]! };
}

const randomHex = (bytes: number): string => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');

describe('traces of the embedded engine', () => {
  let collector: FakeCollector;
  let server: TestServer;
  let model: string;

  beforeAll(async () => {
    collector = await startFakeCollector();
    server = await startTestServer({ otlpEndpoint: collector.url, ...noShedding });
    model = (await new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' }).models.list()).data[0]!.id;
  });
  afterAll(async () => {
    await server?.stop();
    await collector?.close();
  });

  it('gives a chat request one server span with the engine, model, tokens and time to first token', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const traceId = randomHex(16);
    const completion = await client.chat.completions.create(
      { model, messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 4 },
      { headers: { traceparent: `00-${traceId}-${randomHex(8)}-01` } },
    );
    const span = await collector.waitFor(serverSpan('/v1/chat/completions', traceId));
    expect(span.name).toBe('POST /v1/chat/completions');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.response.status_code': 200,
      'parlance.engine': 'llama',
      'gen_ai.request.model': model,
      'gen_ai.usage.input_tokens': completion.usage?.prompt_tokens,
      'gen_ai.usage.output_tokens': completion.usage?.completion_tokens,
    });
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect(span.attributes['gen_ai.server.time_to_first_token']).toBeGreaterThan(0);
    expect(span.resource).toMatchObject({ 'service.name': 'parlance' });
    expect(collector.spans.filter((candidate) => candidate.traceId === traceId)).toHaveLength(1);
  });

  it("makes an incoming traceparent the server span's parent, in the caller's trace", async () => {
    const traceId = randomHex(16);
    const parentId = randomHex(8);
    const response = await fetch(`${server.url}/v1/models`, { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
    expect(response.status).toBe(200);
    const span = await collector.waitFor(serverSpan('/v1/models', traceId));
    expect(span.parentSpanId).toBe(parentId);
    expect(span.name).toBe('GET /v1/models');
  });
});

describe('traces through the relay', () => {
  const model = 'up-model';
  let collector: FakeCollector;
  let upstream: FakeUpstream;
  let server: TestServer;

  beforeAll(async () => {
    collector = await startFakeCollector();
    upstream = await startFakeUpstream({ models: [model] });
    upstream.script = (request) =>
      request.path === '/v1/chat/completions' || request.path === '/v1/completions'
        ? streamPlan(['Hello', ' from', ' fake'], { usage: { prompt_tokens: 9, completion_tokens: 3 }, kind: request.path === '/v1/completions' ? 'text' : 'chat' })
        : undefined;
    server = await startTestServer({ embedded: false, upstreams: [`fake=${upstream.url}`], otlpEndpoint: collector.url, ...noShedding });
  });
  afterAll(async () => {
    await server?.stop();
    await upstream?.close();
    await collector?.close();
  });

  it('makes the upstream call a child span, and sends the upstream a traceparent in the same trace', async () => {
    const response = await post(`${server.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'hi' }], stream: true });
    expect(response.status).toBe(200);
    await response.text();
    const sent = parseTraceparent(upstream.generations().at(-1)?.headers['traceparent']);
    const parent = await collector.waitFor(serverSpan('/v1/chat/completions', sent.traceId));
    const child = await collector.waitFor((span) => span.kind === CLIENT_SPAN && span.traceId === sent.traceId);
    // The upstream continues from the child span: its id is the traceparent's parent id.
    expect(child.spanId).toBe(sent.parentId);
    expect(child.parentSpanId).toBe(parent.spanId);
    expect(child.name).toBe('POST /v1/chat/completions');
    expect(child.attributes).toMatchObject({ 'parlance.upstream': 'fake', 'http.response.status_code': 200, 'gen_ai.request.model': model, 'url.full': `${upstream.url}/chat/completions` });
    expect(parent.attributes).toMatchObject({ 'parlance.engine': 'upstreams', 'gen_ai.usage.input_tokens': 9, 'gen_ai.usage.output_tokens': 3 });
  });

  it('passes an incoming trace through to the upstream', async () => {
    const traceId = randomHex(16);
    const response = await post(`${server.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'hi' }] }, { traceparent: `00-${traceId}-${randomHex(8)}-01` });
    expect(response.status).toBe(200);
    expect(parseTraceparent(upstream.generations().at(-1)?.headers['traceparent']).traceId).toBe(traceId);
  });

  const dialects: readonly { route: string; body: Record<string, unknown> }[] = [
    { route: '/v1/completions', body: { model, prompt: 'hi', max_tokens: 8 } },
    { route: '/v1/responses', body: { model, input: 'hi' } },
    { route: '/v1/messages', body: { model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] } },
    { route: '/api/chat', body: { model, messages: [{ role: 'user', content: 'hi' }], stream: false } },
    { route: '/api/generate', body: { model, prompt: 'hi', stream: false } },
  ];
  it.each(dialects)('attributes the generation of $route to its request span', async ({ route, body }) => {
    const traceId = randomHex(16);
    const response = await post(`${server.url}${route}`, body, { traceparent: `00-${traceId}-${randomHex(8)}-01` });
    expect(response.status).toBe(200);
    await response.text();
    const span = await collector.waitFor(serverSpan(route, traceId));
    expect(span.attributes).toMatchObject({ 'parlance.engine': 'upstreams', 'gen_ai.request.model': model, 'gen_ai.usage.input_tokens': 9, 'gen_ai.usage.output_tokens': 3 });
    expect(span.attributes['gen_ai.server.time_to_first_token']).toBeGreaterThan(0);
    expect(collector.spans.filter((candidate) => candidate.kind === CLIENT_SPAN && candidate.parentSpanId === span.spanId)).toHaveLength(1);
  });

  it("attributes a conversation's reply to the request that asked for it", async () => {
    const created = await post(`${server.url}/parlance/api/conversations`, { model });
    const { id } = (await created.json()) as { id: string };
    const traceId = randomHex(16);
    const reply = await post(`${server.url}/parlance/api/conversations/${id}/messages`, { content: 'hi' }, { traceparent: `00-${traceId}-${randomHex(8)}-01` });
    expect(reply.status).toBe(200);
    await reply.text();
    const span = await collector.waitFor(serverSpan('/parlance/api/conversations/:id/messages', traceId));
    expect(span.attributes).toMatchObject({ 'parlance.engine': 'upstreams', 'gen_ai.request.model': model, 'gen_ai.usage.output_tokens': 3 });
  });

  it('attributes embeddings, with the upstream call as the child span', async () => {
    const traceId = randomHex(16);
    const response = await post(`${server.url}/v1/embeddings`, { model, input: ['one', 'two'] }, { traceparent: `00-${traceId}-${randomHex(8)}-01` });
    expect(response.status).toBe(200);
    const span = await collector.waitFor(serverSpan('/v1/embeddings', traceId));
    expect(span.attributes).toMatchObject({ 'parlance.engine': 'upstreams', 'gen_ai.request.model': model });
    const child = await collector.waitFor((candidate) => candidate.kind === CLIENT_SPAN && candidate.parentSpanId === span.spanId);
    expect(child.name).toBe('POST /v1/embeddings');
    expect(parseTraceparent(upstream.requests.at(-1)?.headers['traceparent']).traceId).toBe(traceId);
  });

  it('marks the upstream span failed when the upstream answers an error', async () => {
    upstream.script = () => ({ status: 503, headers: { 'content-type': 'application/json' }, steps: [{ write: '{"error":{"message":"busy"}}' }] });
    const traceId = randomHex(16);
    const response = await post(`${server.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'hi' }] }, { traceparent: `00-${traceId}-${randomHex(8)}-01` });
    expect(response.status).toBeGreaterThanOrEqual(500);
    const child = await collector.waitFor((span) => span.kind === CLIENT_SPAN && span.traceId === traceId);
    expect(child.attributes['http.response.status_code']).toBe(503);
    expect(child.statusCode).toBe(2);
  });
});

describe('a collector that is down', () => {
  it('neither fails nor holds requests, and the server still shuts down', async () => {
    const server = await startTestServer({ embedded: false, scripted: true, otlpEndpoint: `http://127.0.0.1:${await refusedPort()}`, ...noShedding });
    try {
      for (let i = 0; i < 5; i++) {
        const response = await post(`${server.url}/v1/chat/completions`, { model: 'parlance-scripted', messages: [{ role: 'user', content: `hello ${i}` }] });
        expect(response.status).toBe(200);
        expect(((await response.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content).toContain(`hello ${i}`);
      }
    } finally {
      await server.stop();
    }
  });
});

describe('without --otlp-endpoint', () => {
  /** Starts `parlance serve` with a resolve hook that writes every @opentelemetry import to a file; returns the imports once it served. */
  async function importsOfServe(extra: readonly string[]): Promise<string[]> {
    const dir = await mkdtemp(join(tmpdir(), 'parlance-otel-'));
    const file = join(dir, 'imports.txt');
    const hooks = `import { appendFileSync } from 'node:fs'; export async function resolve(specifier, context, next) { if (specifier.startsWith('@opentelemetry/')) appendFileSync(${JSON.stringify(file)}, specifier + '\\n'); return next(specifier, context); }`;
    const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
    const args = ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--import', 'tsx', 'src/cli.ts', 'serve', '--port', '0', '--no-embedded', '--scripted', '--data-dir', join(dir, 'data'), '--models-dir', join(dir, 'models'), ...extra];
    const child = spawn(process.execPath, args, { cwd: repoRoot, env: { PATH: process.env['PATH'] ?? '', HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let output = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the server did not start within 60 s:\n${output}`)), 60_000);
        const read = (chunk: Buffer): void => {
          output += chunk.toString('utf8');
          if (output.includes('"serving ')) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout.on('data', read);
        child.stderr.on('data', read);
        child.once('exit', () => reject(new Error(`the server exited:\n${output}`)));
      });
      return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('loads nothing of OpenTelemetry (and does with it, which shows the hook sees those imports)', async () => {
    expect(await importsOfServe([])).toEqual([]);
    expect(await importsOfServe(['--otlp-endpoint', `http://127.0.0.1:${await refusedPort()}`])).toContain('@opentelemetry/sdk-trace-node');
  }, 150_000);
});
