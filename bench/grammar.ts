/**
 * What a JSON-schema grammar costs the embedded engine: decode tok/s of free text and of `json_schema` output,
 * through LlamaCppEngine (what the server runs), on the same model, context and seed, in one invocation.
 *
 *   npx tsx bench/grammar.ts [--size tiny|bench] [--tokens N] [--runs R] [--threads T]
 *
 * Defaults: --size bench (the ~305 MB random model of tiny-model.ts, per-token cost of a small real model),
 * 128 tokens, 4 runs of each, 1 thread. Runs alternate (free, schema, schema, free, ...) after a warm-up of each,
 * so machine noise hits both. Each run changes the system message so the whole prompt is evaluated every time.
 *
 * The schema's reply is an object whose first field is a free string, which the random model seldom closes,
 * so both kinds of run generate the full token count; the grammar is checked on every token either way.
 * Decode tok/s of a run: (completion tokens - 1) / (last event - first content); "paired" is the median over
 * rounds of the ratio within a round. Prints a table and a JSON line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { GenerationRequest, JsonSchema } from '../src/engines/contract.js';
import { LlamaCppEngine } from '../src/engines/llama-cpp/engine.js';
import { benchModelOptions, writeTinyModel } from '../src/engines/llama-cpp/tiny-model.js';

const { values: flags } = parseArgs({
  options: {
    size: { type: 'string', default: 'bench' },
    tokens: { type: 'string', default: '128' },
    runs: { type: 'string', default: '4' },
    threads: { type: 'string', default: '1' },
  },
});
const tokens = Number(flags.tokens);
const runs = Number(flags.runs);

const schema: JsonSchema = {
  type: 'object',
  properties: {
    summary: { type: 'string' },
    items: { type: 'array', items: { type: 'object', properties: { name: { type: 'string', maxLength: 20 }, count: { type: 'integer' } }, required: ['name', 'count'], additionalProperties: false } },
    done: { type: 'boolean' },
  },
  required: ['summary', 'items', 'done'],
  additionalProperties: false,
};

interface Run {
  readonly kind: 'free' | 'json_schema';
  readonly tokens: number;
  readonly tokPerS: number;
}

async function measure(engine: LlamaCppEngine, kind: Run['kind'], index: number): Promise<Run> {
  const request: GenerationRequest = {
    model: 'bench',
    input: { kind: 'chat', messages: [{ role: 'system', content: `Run ${index}. You write reports.` }, { role: 'user', content: 'Summarise the day and list what was bought.' }] },
    sampling: { maxTokens: tokens, seed: 42, temperature: 0.8 },
    ...(kind === 'json_schema' ? { responseFormat: { type: 'json_schema', name: 'report', schema } } : {}),
  };
  let first: number | undefined;
  let last = 0;
  let completion = 0;
  for await (const event of await engine.open(request, new AbortController().signal)) {
    if (event.type === 'text-delta') {
      first ??= performance.now();
      last = performance.now();
    }
    if (event.type === 'usage') completion = event.usage.completionTokens;
  }
  const seconds = (last - (first ?? last)) / 1000;
  return { kind, tokens: completion, tokPerS: seconds > 0 ? (completion - 1) / seconds : 0 };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

const dir = await mkdtemp(join(tmpdir(), 'parlance-grammar-bench-'));
try {
  const modelPath = join(dir, `parlance-${flags.size}.gguf`);
  await writeTinyModel(modelPath, flags.size === 'tiny' ? {} : benchModelOptions);
  const engine = await LlamaCppEngine.create({ modelPath, modelId: 'bench', gpu: 'off', threads: Number(flags.threads), sequences: 1, contextSize: 2048, defaultMaxTokens: tokens, queueLength: 1 });
  const load = loadavg()[0] ?? 0;
  await measure(engine, 'free', -1);
  await measure(engine, 'json_schema', -2);
  const results: Run[] = [];
  for (let i = 0; i < runs; i++) {
    const order: Run['kind'][] = i % 2 === 0 ? ['free', 'json_schema'] : ['json_schema', 'free'];
    for (const kind of order) results.push(await measure(engine, kind, i * 2 + order.indexOf(kind)));
  }
  await engine.close();
  const of = (kind: Run['kind']): Run[] => results.filter((run) => run.kind === kind);
  // Each round ran one of each back to back: their ratio sees the same moment's load.
  const paired = median(Array.from({ length: runs }, (_, i) => {
    const round = results.slice(i * 2, i * 2 + 2);
    const f = round.find((run) => run.kind === 'free')?.tokPerS ?? 0;
    const j = round.find((run) => run.kind === 'json_schema')?.tokPerS ?? 0;
    return f > 0 ? j / f : 0;
  }));
  const free = median(of('free').map((run) => run.tokPerS));
  const constrained = median(of('json_schema').map((run) => run.tokPerS));
  console.log(`model ${flags.size}, ${tokens} tokens, ${runs} runs each, threads ${flags.threads}, load average at start ${load.toFixed(2)}`);
  console.log('kind          median tok/s   runs (tok/s)            tokens');
  for (const kind of ['free', 'json_schema'] as const) {
    const list = of(kind);
    console.log(`${kind.padEnd(13)} ${median(list.map((r) => r.tokPerS)).toFixed(1).padStart(12)}   ${list.map((r) => r.tokPerS.toFixed(1)).join(' ').padEnd(24)} ${list.map((r) => r.tokens).join(' ')}`);
  }
  console.log(`json_schema / free: ${(constrained / free).toFixed(3)}x (paired per round: ${paired.toFixed(3)}x); load average at end ${(loadavg()[0] ?? 0).toFixed(2)}`);
  console.log(JSON.stringify({ size: flags.size, tokens, runs, threads: Number(flags.threads), loadAverage: load, freeTokPerS: free, jsonSchemaTokPerS: constrained, ratio: constrained / free, paired, results }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
