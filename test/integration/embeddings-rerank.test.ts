import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { embed, embedMany } from 'ai';
import { readGgufFileInfo } from 'node-llama-cpp';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { tinyModelPath } from '../fixtures/paths.js';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

interface Setup {
  readonly name: string;
  readonly model: string;
  /** The width of the model's vectors. */
  dimension(): Promise<number>;
  start(): Promise<{ server: TestServer; upstream?: FakeUpstream }>;
}

const setups: Setup[] = [
  {
    name: 'the embedded tiny model',
    model: 'parlance-tiny',
    dimension: async () => {
      const info = await readGgufFileInfo(tinyModelPath, { readTensorInfo: false });
      const llama = (info.metadata as { llama?: { embedding_length?: number } }).llama;
      return llama?.embedding_length ?? 0;
    },
    start: async () => ({ server: await startTestServer(noShedding) }),
  },
  {
    name: 'an OpenAI-compatible upstream',
    model: 'up-embed',
    dimension: async () => 8,
    start: async () => {
      const upstream = await startFakeUpstream({ models: ['up-embed'] });
      return { upstream, server: await startTestServer({ embedded: false, upstreams: [`fake=${upstream.url}`], ...noShedding }) };
    },
  },
];

const cosine = (a: readonly number[], b: readonly number[]): number => a.reduce((sum, value, i) => sum + value * (b[i] ?? 0), 0);

describe.each(setups)('embeddings through $name', (setup) => {
  let server: TestServer;
  let upstream: FakeUpstream | undefined;
  let client: OpenAI;
  let width: number;

  beforeAll(async () => {
    ({ server, upstream } = await setup.start());
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    width = await setup.dimension();
  });
  afterAll(async () => {
    await server.stop();
    await upstream?.close();
  });

  it('answers vectors of the model dimension, the same for the same text and different for another, with usage', async () => {
    const answer = await client.embeddings.create({ model: setup.model, input: ['the cat sat on the mat', 'the cat sat on the mat', 'quantum chromodynamics'], encoding_format: 'float' });
    expect(answer.object).toBe('list');
    expect(answer.data.map((item) => item.index)).toEqual([0, 1, 2]);
    const [a, b, c] = answer.data.map((item) => item.embedding);
    expect(width).toBeGreaterThan(0);
    for (const vector of [a, b, c]) expect(vector).toHaveLength(width);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    // Unit length, as OpenAI's vectors are: cosine similarity is then a plain dot product.
    expect(cosine(a ?? [], a ?? [])).toBeCloseTo(1, 4);
    expect(answer.usage.prompt_tokens).toBeGreaterThan(0);
    expect(answer.usage.total_tokens).toBe(answer.usage.prompt_tokens);
  });

  it('sends base64 (the SDK default) that decodes to the same floats', async () => {
    const floats = await client.embeddings.create({ model: setup.model, input: 'hello there', encoding_format: 'float' });
    // Without encoding_format the SDK asks for base64 and decodes it itself.
    const decoded = await client.embeddings.create({ model: setup.model, input: 'hello there' });
    const raw = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: setup.model, input: 'hello there', encoding_format: 'base64' }) });
    const body = (await raw.json()) as { data: { embedding: string }[] };
    expect(typeof body.data[0]?.embedding).toBe('string');
    const bytes = Buffer.from(body.data[0]?.embedding ?? '', 'base64');
    const fromWire = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    const expected = Array.from(Float32Array.from(floats.data[0]?.embedding ?? []));
    expect(fromWire).toEqual(expected);
    expect(Array.from(Float32Array.from(decoded.data[0]?.embedding ?? []))).toEqual(expected);
  });

  it("serves the AI SDK's embed and embedMany", async () => {
    const provider = createOpenAICompatible({ name: 'parlance', baseURL: `${server.url}/v1`, apiKey: 'unused' });
    const model = provider.embeddingModel(setup.model);
    const one = await embed({ model, value: 'sunny day at the beach', maxRetries: 0 });
    expect(one.embedding).toHaveLength(width);
    const many = await embedMany({ model, values: ['sunny day at the beach', 'rainy night in the city'], maxRetries: 0 });
    expect(many.embeddings).toHaveLength(2);
    expect(many.embeddings[0]).toEqual(one.embedding);
    expect(many.embeddings[1]).not.toEqual(one.embedding);
    expect(many.usage.tokens).toBeGreaterThan(0);
  });

  it('refuses what it cannot honour, naming the field', async () => {
    const post = (body: unknown) => fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const cases: [unknown, string][] = [
      [{ model: setup.model, input: 'x', dimensions: 3 }, 'dimensions'],
      [{ model: setup.model, input: [1, 2, 3] }, 'input'],
      [{ model: setup.model, input: [] }, 'input'],
      [{ model: setup.model, input: '' }, 'input'],
      [{ model: setup.model, input: Array.from({ length: 2049 }, () => 'a') }, 'input'],
      [{ model: setup.model, input: 'x', encoding_format: 'int8' }, 'encoding_format'],
    ];
    for (const [body, param] of cases) {
      const response = await post(body);
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      const error = ((await response.json()) as { error: { param: string | null } }).error;
      expect(error.param ?? '').toContain(param);
    }
    const unknown = await post({ model: 'no-such-model', input: 'x' });
    expect(unknown.status).toBe(404);
  });
});

describe('rerank', () => {
  const rerank = (server: TestServer, body: unknown, path = '/v1/rerank') => fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('answers 400 "cannot rerank" for a model without a ranking head (the tiny model)', async () => {
    const server = await startTestServer(noShedding);
    try {
      const response = await rerank(server, { model: 'parlance-tiny', query: 'cats', documents: ['a cat', 'a dog'] });
      expect(response.status).toBe(400);
      const error = ((await response.json()) as { error: { message: string; param: string } }).error;
      expect(error.message).toContain("'parlance-tiny' cannot rerank");
      expect(error.param).toBe('model');
    } finally {
      await server.stop();
    }
  });

  it('through an upstream: results sorted by score, top_n, documents returned, the other paths too', async () => {
    const upstream = await startFakeUpstream({ models: ['up-rerank'] });
    const server = await startTestServer({ embedded: false, upstreams: [`fake=${upstream.url}`], ...noShedding });
    try {
      const documents = ['the weather is nice', 'a cat sat on a warm mat', 'cats and mats', 'stock prices fell'];
      const response = await rerank(server, { model: 'up-rerank', query: 'cat mat', documents, top_n: 3, return_documents: true });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { results: { index: number; relevance_score: number; document: { text: string } }[]; usage: { prompt_tokens: number } };
      expect(body.results).toHaveLength(3);
      expect(body.results[0]?.index).toBe(1);
      const scores = body.results.map((result) => result.relevance_score);
      expect([...scores].sort((a, b) => b - a)).toEqual(scores);
      expect(body.results[0]?.document.text).toBe(documents[1]);
      expect(body.usage.prompt_tokens).toBeGreaterThan(0);
      // All documents were scored upstream, however few the client kept.
      const sent = upstream.generations().at(-1)?.body as { top_n: number };
      expect(sent.top_n).toBe(documents.length);
      for (const path of ['/rerank', '/v1/reranking']) {
        const other = await rerank(server, { query: 'cat mat', documents }, path);
        expect(other.status).toBe(200);
        expect(((await other.json()) as { results: unknown[] }).results).toHaveLength(4);
      }
    } finally {
      await server.stop();
      await upstream.close();
    }
  });
});
