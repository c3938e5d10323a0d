import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import OpenAI from 'openai';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import type { OptionKey } from '../../src/config/schema.js';
import { estimateMemory } from '../../src/engines/llama-cpp/model-inspect.js';
import { ensureTinyModel } from '../../src/engines/llama-cpp/tiny-model.js';
import { startServer, type RunningServer } from '../../src/main.js';

interface ListedModel {
  readonly id: string;
  readonly state?: string;
  readonly load_error?: string;
}

/** Two differently seeded tiny GGUFs and a file named like a model that is not one, in a fresh models dir. */
async function modelsDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'parlance-library-'));
  await ensureTinyModel(join(dir, 'alpha.gguf'), { seed: 1, name: 'alpha' });
  await ensureTinyModel(join(dir, 'beta.gguf'), { seed: 2, name: 'beta' });
  await writeFile(join(dir, 'broken.gguf'), 'this is not a GGUF file\n');
  return dir;
}

/** The real server over that directory, with `alpha` as `--model`, its log lines kept. */
async function start(dir: string, overrides: Partial<Record<OptionKey, unknown>>): Promise<{ server: RunningServer; client: OpenAI; logs: string[] }> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const config = resolveConfig({
    env: {},
    overrides: { host: '127.0.0.1', port: 0, model: join(dir, 'alpha.gguf'), modelsDir: dir, dataDir: join(dir, 'data'), contextSize: 512, sequences: 1, maxEventLoopDelayMs: 0, ...overrides },
  });
  const server = await startServer(config, { env: {}, logger: pino({ level: 'info' }, sink) });
  return { server, client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 }), logs };
}

async function states(client: OpenAI): Promise<Record<string, string | undefined>> {
  const page = await client.models.list();
  return Object.fromEntries((page.data as ListedModel[]).map((model) => [model.id, model.state]));
}

const ask = (client: OpenAI, model: string): Promise<OpenAI.Chat.Completions.ChatCompletion> =>
  client.chat.completions.create({ model, max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] });

const loadsOf = (logs: readonly string[], id: string): number => logs.filter((line) => (JSON.parse(line) as { msg: string }).msg.startsWith(`loading ${id} from`)).length;

describe('a models directory with --models-max 1', () => {
  let dir: string;
  let server: RunningServer;
  let client: OpenAI;
  let logs: string[];
  beforeAll(async () => {
    dir = await modelsDir();
    ({ server, client, logs } = await start(dir, { modelsMax: 1 }));
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists every GGUF with its state: the --model one loaded, the others on disk', async () => {
    expect(await states(client)).toEqual({ alpha: 'loaded', beta: 'on disk', broken: 'on disk' });
  });

  it('loads a model on disk for a request, unloading the other to stay within --models-max', async () => {
    const reply = await ask(client, 'beta');
    expect(reply.model).toBe('beta');
    expect(reply.choices[0]?.finish_reason).toBe('length');
    expect(await states(client)).toMatchObject({ alpha: 'on disk', beta: 'loaded' });
    const ps = (await (await fetch(`${server.url}/api/ps`)).json()) as { models: { name: string; size: number }[] };
    expect(ps.models.map((model) => model.name)).toEqual(['beta']);
    expect(ps.models[0]?.size).toBeGreaterThan(0);
    const health = (await (await fetch(`${server.url}/health`)).json()) as { models: { id: string; state?: string; sequences?: { capacity: number } }[] };
    expect(health.models.find((model) => model.id === 'beta')).toMatchObject({ state: 'loaded', sequences: { capacity: 1 } });
    expect(health.models.find((model) => model.id === 'alpha')).toMatchObject({ state: 'on disk' });
  });

  it('makes requests that come during a load wait for it, and loads the model once', async () => {
    const before = loadsOf(logs, 'alpha');
    const replies = await Promise.all([ask(client, 'alpha'), ask(client, 'alpha'), ask(client, 'alpha')]);
    expect(replies.map((reply) => reply.model)).toEqual(['alpha', 'alpha', 'alpha']);
    expect(loadsOf(logs, 'alpha')).toBe(before + 1);
    expect(await states(client)).toMatchObject({ alpha: 'loaded', beta: 'on disk' });
  });

  it('answers a file that is not a GGUF with an error naming it, and keeps serving the others', async () => {
    const error = await ask(client, 'broken').then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const apiError = error as InstanceType<typeof OpenAI.APIError>;
    expect(apiError.status).toBe(500);
    expect(apiError.code).toBe('model_load_failed');
    expect(apiError.message).toContain(join(dir, 'broken.gguf'));
    const listed = (await client.models.list()).data as ListedModel[];
    expect(listed.find((model) => model.id === 'broken')).toMatchObject({ state: 'failed', load_error: expect.stringContaining('broken.gguf') });
    // The loaded model was not unloaded for a file that could never load.
    expect(await states(client)).toMatchObject({ alpha: 'loaded' });
    expect((await ask(client, 'alpha')).model).toBe('alpha');
    expect((await ask(client, 'beta')).model).toBe('beta');
  });
});

describe('--model-keep-alive', () => {
  let dir: string;
  let server: RunningServer;
  let client: OpenAI;
  beforeAll(async () => {
    dir = await modelsDir();
    ({ server, client } = await start(dir, { modelsMax: 2, modelKeepAliveSeconds: 0.5 }));
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('unloads a model nobody used for that long, and loads it again for the next request', async () => {
    expect((await ask(client, 'beta')).model).toBe('beta');
    let now = await states(client);
    // Polled, not timed: the sweep unloads both once they have been idle half a second.
    for (let i = 0; i < 200 && (now['alpha'] !== 'on disk' || now['beta'] !== 'on disk'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      now = await states(client);
    }
    expect(now).toMatchObject({ alpha: 'on disk', beta: 'on disk' });
    expect((await ask(client, 'beta')).model).toBe('beta');
    // A model on disk is checked against what its file says it can do, not refused for want of a load.
    const embedded = await client.embeddings.create({ model: 'alpha', input: 'hi' });
    expect(embedded.data[0]?.embedding.length).toBeGreaterThan(0);
  });
});

describe('--models-memory', () => {
  let dir: string;
  let server: RunningServer;
  let client: OpenAI;
  let budgetMb: number;
  beforeAll(async () => {
    dir = await modelsDir();
    // A model four times as wide: its weights alone pass a budget that holds one tiny model but not two.
    await ensureTinyModel(join(dir, 'wide.gguf'), { seed: 3, name: 'wide', embeddingLength: 256, feedForwardLength: 512 });
    const context = { contextSize: 512, sequences: 1 };
    const tiny = await estimateMemory(join(dir, 'alpha.gguf'), context);
    const wide = await estimateMemory(join(dir, 'wide.gguf'), context);
    expect(wide).toBeGreaterThan(2 * tiny);
    // One and a half tiny models: room for one of alpha and beta, never for both, nor for wide.
    budgetMb = (1.5 * tiny) / 1e6;
    ({ server, client } = await start(dir, { modelsMax: 4, modelsMemoryMb: budgetMb }));
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('unloads the least recently used idle model when a load would pass the budget, though --models-max has room', async () => {
    expect(await states(client)).toMatchObject({ alpha: 'loaded', beta: 'on disk' });
    expect((await ask(client, 'beta')).model).toBe('beta');
    expect(await states(client)).toMatchObject({ alpha: 'on disk', beta: 'loaded' });
  });

  it('refuses a model that cannot fit alone with an error naming the budget, and keeps serving the others', async () => {
    const error = await ask(client, 'wide').then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const apiError = error as InstanceType<typeof OpenAI.APIError>;
    expect(apiError.code).toBe('model_load_failed');
    expect(apiError.message).toContain('--models-memory');
    expect(apiError.message).toContain(join(dir, 'wide.gguf'));
    // Nothing was unloaded for it.
    expect(await states(client)).toMatchObject({ beta: 'loaded', wide: 'failed' });
    expect((await ask(client, 'beta')).model).toBe('beta');
  });
});
