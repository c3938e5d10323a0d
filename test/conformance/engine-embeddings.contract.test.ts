/**
 * The embeddings and rerank part of the engine contract (`Engine.embed`, `Engine.rerank`, the `embeddings`
 * and `rerank` capabilities), run against every engine: the embedded llama.cpp engine on the tiny model, the
 * OpenAI-compatible relay in front of the fake upstream (which embeds and reranks as a real server does), and
 * the scripted engine, which declares neither.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine, ModelInfo } from '../../src/engines/contract.js';
import { LlamaCppEngine } from '../../src/engines/llama-cpp/engine.js';
import { OpenAICompatibleEngine } from '../../src/engines/openai-compatible/engine.js';
import { ScriptedEngine } from '../../src/engines/scripted/engine.js';
import { startFakeUpstream } from '../fixtures/fake-upstream.js';
import { tinyModelPath } from '../fixtures/paths.js';

interface Target {
  readonly name: string;
  start(): Promise<{ engine: Engine; model: ModelInfo; stop(): Promise<void> }>;
}

const first = (engine: Engine): ModelInfo => {
  const model = engine.models()[0];
  if (model === undefined) throw new Error('no model');
  return model;
};

const targets: Target[] = [
  {
    name: 'embedded llama.cpp (tiny model)',
    async start() {
      const engine = await LlamaCppEngine.create({ modelPath: tinyModelPath, modelId: 'parlance-tiny', gpu: 'off', threads: 1, sequences: 1, contextSize: 512, defaultMaxTokens: 8, queueLength: 2 });
      return { engine, model: first(engine), stop: () => engine.close() };
    },
  },
  {
    name: 'OpenAI-compatible relay (fake upstream)',
    async start() {
      const fake = await startFakeUpstream();
      const engine = new OpenAICompatibleEngine({ name: 'fake', baseUrl: fake.url, models: ['fake-model'], stallTimeoutMs: 5_000, totalTimeoutMs: 30_000 });
      return { engine, model: first(engine), stop: async () => (await engine.close(), await fake.close()) };
    },
  },
  {
    name: 'scripted',
    start() {
      const engine = new ScriptedEngine();
      return Promise.resolve({ engine, model: first(engine), stop: () => engine.close() });
    },
  },
];

const live = (): AbortSignal => new AbortController().signal;
const norm = (vector: ArrayLike<number>): number => Math.hypot(...Array.from(vector));

describe.each(targets)('Engine embeddings contract: $name', (target) => {
  let engine: Engine;
  let model: ModelInfo;
  let stop: () => Promise<void>;
  beforeAll(async () => {
    ({ engine, model, stop } = await target.start());
  });
  afterAll(async () => stop());

  it('declares embeddings and rerank only with the method that serves them', () => {
    if (model.capabilities.has('embeddings')) expect(engine.embed).toBeTypeOf('function');
    if (model.capabilities.has('rerank')) expect(engine.rerank).toBeTypeOf('function');
  });

  it('embeds one unit vector per input, in order, the same for the same text, with the tokens it read', async (context) => {
    if (!model.capabilities.has('embeddings') || !engine.embed) return context.skip();
    const texts = ['a cat on a mat', 'the stock market fell', 'a cat on a mat'];
    const result = await engine.embed({ model: model.id, inputs: texts }, live());
    expect(result.vectors).toHaveLength(3);
    const [a, b, c] = result.vectors.map((vector) => Array.from(vector));
    expect(a?.length).toBeGreaterThan(0);
    expect(b).toHaveLength(a?.length ?? 0);
    expect(c).toEqual(a);
    expect(b).not.toEqual(a);
    for (const vector of result.vectors) expect(norm(vector)).toBeCloseTo(1, 4);
    expect(result.promptTokens).toBeGreaterThan(0);
    const reversed = await engine.embed({ model: model.id, inputs: [...texts].reverse() }, live());
    expect(Array.from(reversed.vectors[1] ?? [])).toEqual(b);
  });

  it('stops without an answer when the signal has already aborted', async (context) => {
    if (!model.capabilities.has('embeddings') || !engine.embed) return context.skip();
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(engine.embed({ model: model.id, inputs: ['x'] }, controller.signal)).rejects.toThrow();
  });

  it('scores every document of a rerank, in order', async (context) => {
    if (!model.capabilities.has('rerank') || !engine.rerank) return context.skip();
    const result = await engine.rerank({ model: model.id, query: 'cat mat', documents: ['stocks fell', 'a cat on a mat'] }, live());
    expect(result.scores).toHaveLength(2);
    for (const score of result.scores) expect(Number.isFinite(score)).toBe(true);
  });
});
