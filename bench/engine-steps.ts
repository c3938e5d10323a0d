/**
 * Where a decode step's time goes in the embedded engine, against llama.cpp's own `llama-batched-bench` (the
 * same llama.cpp decoding the same batches with nothing around it), alternated in one run.
 *
 *   bench/peers/build-llama-server.sh     # also builds .cache/peers/llama.cpp/build/bin/llama-batched-bench
 *   npx tsx bench/engine-steps.ts [--streams 1,4] [--tokens 64] [--runs 4] [--threads 1]
 *                                 [--model .cache/models/parlance-bench.gguf] [--batched-bench PATH]
 *
 * For each stream count and run: `LlamaCppEngine` in this process generates --tokens tokens on each of
 * --streams chats at once (4 sequences of 2,048 tokens, as bench/engine-peer.ts), with the context's native
 * calls timed through a proxy. A step is one `decodeBatch`. Per step it reports:
 * - step: decode + sampling + JS, the generating steps' mean (the prompt step left out);
 * - decode: from the `decodeBatch` call to its promise resolving (llama.cpp's decode plus the thread-pool hops);
 * - sampling: from the decode's end to the last of its tokens' `sampleToken` promises resolving;
 * - JS: from there to the next `decodeBatch` call (node-llama-cpp's and Parlance's work on the new tokens);
 * - batched-bench: `llama-batched-bench -npl <streams> -ntg <tokens>`'s text-generation time per step.
 * Medians over runs, the best run of each side (least disturbed by the machine), and the decode's p10. Without a built
 * llama-batched-bench it says so and reports Parlance's side only. Nothing is downloaded.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LlamaCppEngine } from '../src/engines/llama-cpp/engine.js';
import { median, percentile } from './lib/measure.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const { values: flags } = parseArgs({
  options: {
    model: { type: 'string', default: join(repoRoot, '.cache/models/parlance-bench.gguf') },
    streams: { type: 'string', default: '1,4' },
    tokens: { type: 'string', default: '64' },
    runs: { type: 'string', default: '4' },
    threads: { type: 'string', default: '1' },
    'batched-bench': { type: 'string', default: join(repoRoot, '.cache/peers/llama.cpp/build/bin/llama-batched-bench') },
  },
});
const streamCounts = (flags.streams ?? '1,4').split(',').map(Number);
const tokens = Number(flags.tokens);
const runs = Number(flags.runs);
const threads = Number(flags.threads);
const modelPath = flags.model ?? '';
const batchedBench = flags['batched-bench'] ?? '';
const sequences = 4;
const contextSize = 2048;
if (!existsSync(modelPath)) throw new Error(`no model at ${modelPath}: node dist/src/engines/llama-cpp/tiny-model.js --bench`);
const havePeer = existsSync(batchedBench);
if (!havePeer) console.log(`no llama-batched-bench at ${batchedBench} (bench/peers/build-llama-server.sh builds it): Parlance only`);

interface StepFigures {
  readonly stepMs: number;
  readonly decodeMs: number;
  readonly decodeP10Ms: number;
  readonly samplingMs: number;
  readonly jsMs: number;
  readonly tokensPerStep: number;
}

const engine = await LlamaCppEngine.create({ modelPath, modelId: 'bench', gpu: 'off', threads, sequences, contextSize, defaultMaxTokens: tokens, queueLength: 2 * sequences });

// The context's native object, timed through a proxy (bench only: the engine is not told).
const holder = Reflect.get(engine, 'context') as object;
const native = Reflect.get(holder, '_ctx') as object;
let decodeCalledAt = 0;
let decodeEndedAt = 0;
let lastSampleAt = 0;
let batchTokens = 0;
const steps: { decode: number; sampling: number; js: number; tokens: number }[] = [];
let pending: { decode: number; tokens: number } | undefined;
Reflect.set(holder, '_ctx', new Proxy(native, {
  get(target, key) {
    const value: unknown = Reflect.get(target, key);
    if (typeof value !== 'function') return value;
    return (...args: unknown[]): unknown => {
      if (key === 'decodeBatch') {
        const now = performance.now();
        if (pending !== undefined) {
          const sampled = Math.max(lastSampleAt, decodeEndedAt);
          steps.push({ decode: pending.decode, sampling: sampled - decodeEndedAt, js: now - sampled, tokens: pending.tokens });
          pending = undefined;
        }
        decodeCalledAt = now;
        const tokensInBatch = batchTokens;
        batchTokens = 0;
        const result = Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
        if (result instanceof Promise) {
          void result.then(() => {
            decodeEndedAt = performance.now();
            lastSampleAt = 0;
            pending = { decode: decodeEndedAt - decodeCalledAt, tokens: tokensInBatch };
          });
        }
        return result;
      }
      if (key === 'addToBatch') batchTokens += (args[2] as Uint32Array).length;
      const result = Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
      if (key === 'sampleToken' && result instanceof Promise) void result.then(() => { lastSampleAt = performance.now(); });
      return result;
    };
  },
}));

async function parlanceRun(run: number, streams: number): Promise<StepFigures> {
  steps.length = 0;
  pending = undefined;
  await Promise.all(Array.from({ length: streams }, async (_, stream) => {
    const generation = await engine.open({
      model: 'bench',
      input: { kind: 'chat', messages: [{ role: 'user', content: `Run ${run}.${stream}: tell me a long story about a cat and a dog in the city.` }] },
      sampling: { temperature: 0.8, topP: 0.95, maxTokens: tokens, seed: 42 + stream },
    }, new AbortController().signal);
    for await (const event of generation) void event;
  }));
  // The first step of a run is its prompts, the rest generate one token per stream.
  const generating = steps.slice(1);
  const decodes = generating.map((step) => step.decode);
  return {
    stepMs: generating.reduce((sum, step) => sum + step.decode + step.sampling + step.js, 0) / Math.max(1, generating.length),
    decodeMs: median(decodes),
    decodeP10Ms: percentile(decodes, 10),
    samplingMs: median(generating.map((step) => step.sampling)),
    jsMs: median(generating.map((step) => step.js)),
    tokensPerStep: generating.reduce((sum, step) => sum + step.tokens, 0) / Math.max(1, generating.length),
  };
}

/** llama-batched-bench's text-generation ms per step for `streams` parallel sequences. */
function batchedBenchRun(streams: number): Promise<number> {
  const args = ['-m', modelPath, '-c', String(contextSize * sequences), '-b', '512', '-ub', '512', '-npp', '32', '-ntg', String(tokens), '-npl', String(streams), '-t', String(threads), '-tb', String(threads), '-ngl', '0'];
  return new Promise((resolve, reject) => {
    const child = spawn(batchedBench, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', () => undefined);
    child.on('error', reject);
    child.on('close', () => {
      // | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
      const row = out.split('\n').find((line) => /^\|\s+\d+\s+\|/.test(line));
      const cells = row?.split('|').map((cell) => cell.trim()) ?? [];
      const tgSeconds = Number(cells[7]);
      if (!Number.isFinite(tgSeconds)) reject(new Error(`llama-batched-bench printed no result:\n${out.slice(-2000)}`));
      else resolve((tgSeconds * 1000) / tokens);
    });
  });
}

const fmt = (value: number): string => value.toFixed(2).padStart(7);
console.log(`bench/engine-steps: ${modelPath}, ${threads} thread(s), ${tokens} tokens per stream, ${runs} runs, alternated with llama-batched-bench`);
const report: Record<string, unknown> = {};
await parlanceRun(0, Math.max(...streamCounts)); // warm-up
for (const streams of streamCounts) {
  const ours: StepFigures[] = [];
  const peer: number[] = [];
  for (let run = 1; run <= runs; run++) {
    // Alternate which goes first, so the machine's noise falls on both.
    if (havePeer && run % 2 === 0) peer.push(await batchedBenchRun(streams));
    ours.push(await parlanceRun(run, streams));
    if (havePeer && run % 2 === 1) peer.push(await batchedBenchRun(streams));
  }
  const pick = (key: keyof StepFigures): number => median(ours.map((figures) => figures[key]));
  console.log(`\n${streams} stream(s), ms per step (medians of ${runs} runs; tokens per step ${pick('tokensPerStep').toFixed(2)})`);
  console.log(`  Parlance step ${fmt(pick('stepMs'))} (best run ${Math.min(...ours.map((figures) => figures.stepMs)).toFixed(2)})   decode ${fmt(pick('decodeMs'))} (p10 ${pick('decodeP10Ms').toFixed(2)})   sampling ${fmt(pick('samplingMs'))}   JS ${fmt(pick('jsMs'))}`);
  if (havePeer) console.log(`  llama-batched-bench ${fmt(median(peer))} (best run ${Math.min(...peer).toFixed(2)}; runs: ${peer.map((value) => value.toFixed(2)).join(', ')})`);
  report[`streams-${streams}`] = { parlance: ours, batchedBenchMsPerStep: peer };
}
await engine.close();
console.log(JSON.stringify({ bench: 'engine-steps', threads, tokens, runs, ...report }));
