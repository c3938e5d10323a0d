/**
 * Embedded-engine benchmark: what Parlance's HTTP + SSE path costs on top of
 * node-llama-cpp driven directly, on the same model file, threads and context
 * settings, in one invocation.
 *
 *   npx tsx bench/engine.ts [--size tiny|bench] [--tokens N] [--runs R]
 *                           [--threads T] [--streams K] [--cpu-prof DIR] [--timeout S]
 *   npx tsx bench/engine.ts --sweep [--size tiny|bench] [--tokens N] [--runs R]
 *   ... --model path/to/real.gguf   (instead of --size: any local GGUF)
 *   npm run bench:engine -- --size tiny
 *
 * Defaults: --size bench (the ~305 MB random model of tiny-model.ts, whose
 * per-token cost looks like a small real model's), 128 tokens, 8 runs (4 rounds
 * with --sweep), threads 1, 1 stream, temperature 0.8, seed 42, context 2048.
 *
 * - direct: this process loads the model with node-llama-cpp (getLlama without
 *   GPU, loadModel, createContext with `streams` sequences, LlamaChat) and asks
 *   for the reply exactly as the embedded engine does (same history shape, same
 *   sampling values, a fixed seed).
 * - http: the real server (`src/cli.ts serve`) runs as a child process on a free
 *   port with the same model, threads, sequences and context size; the same
 *   messages are streamed from `/v1/chat/completions` with `fetch`, and the token
 *   count comes from the final `usage` chunk (`stream_options.include_usage`).
 *
 * Runs are interleaved (direct, http, http, direct, ...) after one warm-up of
 * each, so machine noise hits both paths. Every run puts its index at the start
 * of the system message, so both paths evaluate the whole prompt each time
 * (a repeated prompt would be served from the sequence's KV cache).
 *
 * TTFT: from the call (generateResponse / fetch) to the first non-empty text.
 * Decode tok/s of a stream: (completion tokens - 1) / (end - first text).
 * With --streams K > 1, K streams run at once on K sequences, and aggregate
 * tok/s = all tokens / (last end - first start).
 * CPU ms per 1,000 tokens: the server process's utime+stime (/proc/PID/stat)
 * over the measured http runs, and this process's CPU over the measured direct
 * runs (model threads included), per 1,000 generated tokens.
 *
 * --sweep measures the threads and sequences settings instead (direct only, no
 * server): one model, one context per setting (threads 1 and 2 with one stream;
 * 2 and 4 streams on as many sequences with threads 1 and 2), runs rotated
 * across the settings so noise hits them all alike. Aggregate tok/s is the
 * figure that matters for a server; TTFT shows what threads do to prefill.
 *
 * Prints a table and one JSON line (the last line). The model is written to a
 * temporary directory, and every process started here is stopped at the end,
 * on error, on Ctrl-C and when --timeout (default 300 s, 600 s with --sweep)
 * runs out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createParser } from 'eventsource-parser';
import { getLlama, LlamaChat, LlamaLogLevel, type ChatHistoryItem, type LlamaContextSequence, type LlamaModel } from 'node-llama-cpp';
import { benchModelOptions, writeTinyModel } from '../src/engines/llama-cpp/tiny-model.js';
import { freePort } from '../test/fixtures/net.js';
import { median, percentile, processCpuMs } from './lib/measure.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    size: { type: 'string', default: 'bench' },
    model: { type: 'string' },
    tokens: { type: 'string', default: '128' },
    runs: { type: 'string' },
    sweep: { type: 'boolean', default: false },
    threads: { type: 'string', default: '1' },
    streams: { type: 'string', default: '1' },
    'context-size': { type: 'string', default: '2048' },
    temperature: { type: 'string', default: '0.8' },
    seed: { type: 'string', default: '42' },
    'cpu-prof': { type: 'string' },
    timeout: { type: 'string' },
  },
  strict: true,
});

function positiveInt(name: string, raw: string | undefined): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return value;
}

const size = flags.size;
if (size !== 'tiny' && size !== 'bench') throw new Error(`--size must be tiny or bench, got ${size}`);
/** How the model is named in the report. */
const modelName = flags.model === undefined ? `parlance-${size}` : basename(flags.model);
const tokens = positiveInt('tokens', flags.tokens);
const sweep = flags.sweep;
const runs = positiveInt('runs', flags.runs ?? (sweep ? '4' : '8'));
const threads = positiveInt('threads', flags.threads);
const streams = positiveInt('streams', flags.streams);
const contextSize = positiveInt('context-size', flags['context-size']);
const temperature = Number(flags.temperature);
const seed = positiveInt('seed', flags.seed);
const timeoutS = positiveInt('timeout', flags.timeout ?? (sweep ? '600' : '300'));
const cpuProfDir = flags['cpu-prof'];
/** The embedded engine's sampling defaults for what the OpenAI API cannot set (src/engines/llama-cpp/engine.ts). */
const sampling = { topP: 0.95, topK: 40, minP: 0.05 } as const;

// ---------------------------------------------------------------------------
// Lifetime: everything started here is stopped on every way out
// ---------------------------------------------------------------------------

const deadline = new AbortController();
const cleanups: (() => Promise<void>)[] = [];
let server: ChildProcess | undefined;

async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((error: unknown) => console.error('cleanup failed:', error));
}

process.on('exit', () => {
  // Last resort (the normal path has already stopped it): never leave the server running.
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    deadline.abort(new Error(signal));
    void cleanUp().finally(() => process.exit(130));
  });
}
const timer = setTimeout(() => {
  console.error(`bench: still running after ${timeoutS} s (--timeout); stopping`);
  deadline.abort(new Error('timeout'));
  void cleanUp().finally(() => process.exit(2));
}, timeoutS * 1000);
timer.unref();

// ---------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------

interface StreamResult {
  readonly startedAt: number;
  readonly ttftMs: number;
  readonly endedAt: number;
  readonly completionTokens: number;
  readonly text: string;
}

interface RunResult {
  readonly streams: readonly StreamResult[];
  /** CPU milliseconds the generating process spent on this run. */
  readonly cpuMs: number;
}

function decodeTokPerS(s: StreamResult): number {
  const decodeMs = s.endedAt - (s.startedAt + s.ttftMs);
  return decodeMs > 0 && s.completionTokens > 1 ? ((s.completionTokens - 1) * 1000) / decodeMs : 0;
}

function aggregateTokPerS(run: RunResult): number {
  const start = Math.min(...run.streams.map((s) => s.startedAt));
  const end = Math.max(...run.streams.map((s) => s.endedAt));
  const total = run.streams.reduce((sum, s) => sum + s.completionTokens, 0);
  return (total * 1000) / (end - start);
}

/** The chat of stream `stream` in run `run`: the run index comes first so no prompt prefix is reused. */
function messagesFor(run: number, stream: number): { role: 'system' | 'user'; content: string }[] {
  return [
    { role: 'system', content: `Run ${run}.${stream}. You are a helpful assistant. Answer in full sentences.` },
    { role: 'user', content: 'Tell me a long story about a cat, a dog and the time they spent together in the city.' },
  ];
}

function requestSeed(stream: number): number {
  return seed + stream;
}

// ---------------------------------------------------------------------------
// Direct: node-llama-cpp in this process
// ---------------------------------------------------------------------------

interface DirectEngine {
  run(runIndex: number): Promise<RunResult>;
  dispose(): Promise<void>;
}

async function loadDirectModel(modelPath: string): Promise<{ model: LlamaModel; dispose(): Promise<void> }> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.warn });
  const model = await llama.loadModel({ modelPath });
  return {
    model,
    async dispose() {
      await model.dispose();
      await llama.dispose();
    },
  };
}

async function openDirect(model: LlamaModel, threads: number, streams: number): Promise<DirectEngine> {
  const context = await model.createContext({ contextSize, sequences: streams, threads });
  const chats: { sequence: LlamaContextSequence; chat: LlamaChat }[] = [];
  for (let i = 0; i < streams; i++) {
    const sequence = context.getSequence();
    chats.push({ sequence, chat: new LlamaChat({ contextSequence: sequence }) });
  }

  const generate = async ({ chat }: { chat: LlamaChat }, runIndex: number, stream: number): Promise<StreamResult> => {
    // The history shape the embedded engine builds (toChatHistory): system, user, an empty model turn.
    const [system, user] = messagesFor(runIndex, stream);
    const history: ChatHistoryItem[] = [
      { type: 'system', text: system?.content ?? '' },
      { type: 'user', text: user?.content ?? '' },
      { type: 'model', response: [] },
    ];
    let firstAt = 0;
    let completionTokens = 0;
    const parts: string[] = [];
    const startedAt = performance.now();
    await chat.generateResponse(history, {
      signal: deadline.signal,
      stopOnAbortSignal: true,
      maxTokens: tokens,
      temperature,
      ...sampling,
      seed: requestSeed(stream),
      onTextChunk: (text) => {
        if (!text) return;
        if (!firstAt) firstAt = performance.now();
        parts.push(text);
      },
      onToken: (chunk) => {
        completionTokens += chunk.length;
      },
    });
    const endedAt = performance.now();
    return { startedAt, ttftMs: firstAt - startedAt, endedAt, completionTokens, text: parts.join('') };
  };

  return {
    async run(runIndex) {
      const before = process.cpuUsage();
      const results = await Promise.all(chats.map((slot, stream) => generate(slot, runIndex, stream)));
      const cpu = process.cpuUsage(before);
      return { streams: results, cpuMs: (cpu.user + cpu.system) / 1000 };
    },
    async dispose() {
      await context.dispose();
    },
  };
}

// ---------------------------------------------------------------------------
// HTTP: the real server as a child process, streamed with fetch
// ---------------------------------------------------------------------------

interface HttpEngine {
  run(runIndex: number): Promise<RunResult>;
  stop(): Promise<void>;
}

interface StreamChunk {
  choices?: { delta?: { content?: string } }[];
  usage?: { completion_tokens?: number };
  error?: { message?: string };
}

async function startHttp(modelPath: string, dataDir: string): Promise<HttpEngine> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PARLANCE_')) env[key] = value;
  const nodeArgs = ['--import', 'tsx', ...(cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : [])];
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      'src/cli.ts',
      'serve',
      '--model', modelPath,
      '--host', '127.0.0.1',
      '--port', String(port),
      '--threads', String(threads),
      '--sequences', String(streams),
      '--context-size', String(contextSize),
      '--queue-length', String(streams),
      '--gpu', 'off',
      '--models-dir', join(dataDir, 'models'),
      '--log-level', 'info',
    ],
    { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server = child;
  // Keep the pipes drained (a full pipe would block the server's logger) and the tail for error messages.
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the server');

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM'); // a graceful stop: --cpu-prof writes its profile on the way out
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
  };
  cleanups.push(stop);

  // Wait until /ready answers (the server listens while the model loads), or the server dies.
  const readyBy = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the server exited before it was ready:\n${tail}`);
    if (Date.now() > readyBy) throw new Error(`the server was not ready after 120 s:\n${tail}`);
    const ok = await fetch(`${url}/ready`, { signal: deadline.signal }).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const models = (await (await fetch(`${url}/v1/models`, { signal: deadline.signal })).json()) as { data: { id: string }[] };
  const modelId = models.data[0]?.id;
  if (!modelId) throw new Error('the server lists no model');

  const generate = async (runIndex: number, stream: number): Promise<StreamResult> => {
    const body = JSON.stringify({
      model: modelId,
      messages: messagesFor(runIndex, stream),
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: tokens,
      temperature,
      top_p: sampling.topP,
      seed: requestSeed(stream),
    });
    const startedAt = performance.now();
    const response = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: deadline.signal });
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
    let firstAt = 0;
    let completionTokens = -1;
    const parts: string[] = [];
    const parser = createParser({
      onEvent: (event) => {
        if (event.data === '[DONE]') return;
        const chunk = JSON.parse(event.data) as StreamChunk;
        if (chunk.error) throw new Error(`error in the stream: ${chunk.error.message ?? event.data}`);
        const text = chunk.choices?.[0]?.delta?.content;
        if (text) {
          if (!firstAt) firstAt = performance.now();
          parts.push(text);
        }
        if (chunk.usage?.completion_tokens !== undefined) completionTokens = chunk.usage.completion_tokens;
      },
    });
    const decoder = new TextDecoder();
    for await (const bytes of response.body) parser.feed(decoder.decode(bytes, { stream: true }));
    parser.feed(decoder.decode());
    const endedAt = performance.now();
    if (completionTokens < 0) throw new Error('the stream ended without a usage chunk');
    return { startedAt, ttftMs: firstAt - startedAt, endedAt, completionTokens, text: parts.join('') };
  };

  return {
    async run(runIndex) {
      const before = await processCpuMs(pid);
      const results = await Promise.all(Array.from({ length: streams }, (_, stream) => generate(runIndex, stream)));
      return { streams: results, cpuMs: (await processCpuMs(pid)) - before };
    },
    stop,
  };
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

interface PathSummary {
  ttftMs: { median: number; p90: number };
  /** Per-stream decode speed; p10 is the slow tail (90% of streams were at least this fast). */
  decodeTokPerS: { median: number; p10: number };
  aggregateTokPerS: { median: number; p10: number };
  cpuMsPer1kTokens: number;
  completionTokens: number;
}

function summarise(results: readonly RunResult[]): PathSummary {
  const all = results.flatMap((run) => run.streams);
  const ttft = all.map((s) => s.ttftMs);
  const decode = all.map(decodeTokPerS);
  const aggregate = results.map(aggregateTokPerS);
  const totalTokens = all.reduce((sum, s) => sum + s.completionTokens, 0);
  const cpuMs = results.reduce((sum, run) => sum + run.cpuMs, 0);
  return {
    ttftMs: { median: median(ttft), p90: percentile(ttft, 90) },
    decodeTokPerS: { median: median(decode), p10: percentile(decode, 10) },
    aggregateTokPerS: { median: median(aggregate), p10: percentile(aggregate, 10) },
    cpuMsPer1kTokens: (cpuMs * 1000) / totalTokens,
    completionTokens: totalTokens,
  };
}

const round = (value: number, digits = 1): number => Number(value.toFixed(digits));

function roundDeep<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? round(v, 2) : v))) as T;
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

/** Writes the model into a fresh temporary directory (removed at the end), or takes --model's file. */
async function writeModel(): Promise<{ dataDir: string; modelPath: string; modelBytes: number; writeMs: number }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'parlance-bench-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  if (flags.model !== undefined) return { dataDir, modelPath: flags.model, modelBytes: (await stat(flags.model)).size, writeMs: 0 };
  const modelPath = join(dataDir, `parlance-${size}.gguf`);
  const writeStart = performance.now();
  await writeTinyModel(modelPath, size === 'bench' ? benchModelOptions : {});
  return { dataDir, modelPath, modelBytes: (await stat(modelPath)).size, writeMs: performance.now() - writeStart };
}

async function main(): Promise<void> {
  const { dataDir, modelPath, modelBytes, writeMs } = await writeModel();
  const loadBefore = loadavg()[0] ?? 0;

  const directModel = await loadDirectModel(modelPath);
  cleanups.push(() => directModel.dispose());
  const direct = await openDirect(directModel.model, threads, streams);
  cleanups.push(() => direct.dispose());
  const http = await startHttp(modelPath, dataDir);

  // Warm-up, then interleave so noise (and any drift) hits both paths alike.
  await direct.run(0);
  await http.run(0);
  const directRuns: RunResult[] = [];
  const httpRuns: RunResult[] = [];
  for (let i = 1; i <= runs; i++) {
    if (i % 2) {
      directRuns.push(await direct.run(i));
      httpRuns.push(await http.run(i));
    } else {
      httpRuns.push(await http.run(i));
      directRuns.push(await direct.run(i));
    }
  }
  const loadAfter = loadavg()[0] ?? 0;
  await cleanUp();

  for (const [name, results] of [['direct', directRuns], ['http', httpRuns]] as const) {
    for (const s of results.flatMap((run) => run.streams)) {
      if (s.completionTokens !== tokens) throw new Error(`${name}: a stream generated ${s.completionTokens} tokens, not ${tokens}`);
    }
  }
  let sameText = 0;
  for (let i = 0; i < runs; i++) {
    const a = directRuns[i]?.streams ?? [];
    const b = httpRuns[i]?.streams ?? [];
    if (a.length === b.length && a.every((s, k) => s.text === b[k]?.text)) sameText++;
  }

  const d = summarise(directRuns);
  const h = summarise(httpRuns);
  const decodeRatio = h.decodeTokPerS.median / d.decodeTokPerS.median;
  const aggregateRatio = h.aggregateTokPerS.median / d.aggregateTokPerS.median;
  const ttftDeltaMs = h.ttftMs.median - d.ttftMs.median;
  // Paired per run (same prompt, adjacent in time): less sensitive to drift than the medians' ratio.
  const paired = directRuns.map((run, i) => {
    const other = httpRuns[i];
    return other ? { decode: median(other.streams.map(decodeTokPerS)) / median(run.streams.map(decodeTokPerS)), ttft: median(other.streams.map((s) => s.ttftMs)) - median(run.streams.map((s) => s.ttftMs)) } : undefined;
  }).filter((x) => x !== undefined);
  const pairedDecodeRatio = median(paired.map((p) => p.decode));
  const pairedTtftDeltaMs = median(paired.map((p) => p.ttft));

  const pad = (text: string, width: number): string => text.padEnd(width);
  const row = (name: string, s: PathSummary): string =>
    pad(name, 8) +
    pad(`${s.ttftMs.median.toFixed(1)} / ${s.ttftMs.p90.toFixed(1)}`, 24) +
    pad(`${s.decodeTokPerS.median.toFixed(1)} / ${s.decodeTokPerS.p10.toFixed(1)}`, 24) +
    (streams > 1 ? pad(`${s.aggregateTokPerS.median.toFixed(1)} / ${s.aggregateTokPerS.p10.toFixed(1)}`, 24) : '') +
    s.cpuMsPer1kTokens.toFixed(0);
  const mark = (ok: boolean): string => (ok ? 'met' : 'MISSED');

  console.log(
    `\nbench/engine: model ${modelName} (${(modelBytes / 1e6).toFixed(1)} MB, written in ${(writeMs / 1000).toFixed(1)} s), ` +
      `${tokens} tokens, ${runs} runs per path after 1 warm-up, threads ${threads}, sequences ${streams}, concurrent streams ${streams}, context ${contextSize}`,
  );
  console.log(`Node ${process.version}, ${availableParallelism()} CPUs, 1-min load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after\n`);
  console.log(
    pad('path', 8) + pad('TTFT ms med / p90', 24) + pad('decode tok/s med / p10', 24) + (streams > 1 ? pad('aggr. tok/s med / p10', 24) : '') + 'CPU ms per 1k tokens',
  );
  console.log(row('direct', d));
  console.log(row('http', h));
  console.log('');
  console.log(`HTTP ÷ direct decode tok/s: ${decodeRatio.toFixed(3)} (paired per run: ${pairedDecodeRatio.toFixed(3)}; target ≥ 0.95: ${mark(decodeRatio >= 0.95)})`);
  if (streams > 1) console.log(`HTTP ÷ direct aggregate tok/s: ${aggregateRatio.toFixed(3)}`);
  console.log(`HTTP − direct TTFT: ${ttftDeltaMs >= 0 ? '+' : ''}${ttftDeltaMs.toFixed(1)} ms (paired per run: ${pairedTtftDeltaMs.toFixed(1)} ms; target ≤ 15 ms: ${mark(ttftDeltaMs <= 15)})`);
  console.log(`Server CPU over direct: ${(h.cpuMsPer1kTokens - d.cpuMsPer1kTokens).toFixed(0)} ms per 1k tokens; same text on both paths in ${sameText}/${runs} runs\n`);
  console.log(
    JSON.stringify(
      roundDeep({
        bench: 'engine',
        size,
        model: modelName,
        modelBytes,
        tokens,
        runs,
        threads,
        sequences: streams,
        streams,
        contextSize,
        temperature,
        seed,
        node: process.version,
        cpus: availableParallelism(),
        loadAverage: [loadBefore, loadAfter],
        direct: d,
        http: h,
        httpOverDirectDecode: decodeRatio,
        httpOverDirectDecodePaired: pairedDecodeRatio,
        httpOverDirectAggregate: aggregateRatio,
        httpMinusDirectTtftMs: ttftDeltaMs,
        httpMinusDirectTtftMsPaired: pairedTtftDeltaMs,
        sameTextRuns: sameText,
      }),
    ),
  );
}

/** --sweep: threads × sequences, direct only, settings rotated within each round. */
async function mainSweep(): Promise<void> {
  const { modelPath, modelBytes } = await writeModel();
  const loadBefore = loadavg()[0] ?? 0;
  const directModel = await loadDirectModel(modelPath);
  cleanups.push(() => directModel.dispose());
  const settings = [
    { threads: 1, streams: 1 },
    { threads: 2, streams: 1 },
    { threads: 1, streams: 2 },
    { threads: 1, streams: 4 },
    { threads: 2, streams: 2 },
    { threads: 2, streams: 4 },
  ].map((setting) => ({ ...setting, engine: undefined as DirectEngine | undefined, results: [] as RunResult[] }));
  for (const setting of settings) {
    const engine = await openDirect(directModel.model, setting.threads, setting.streams);
    cleanups.push(() => engine.dispose());
    setting.engine = engine;
    await engine.run(0); // warm-up
  }
  for (let i = 1; i <= runs; i++) {
    // Rotate the order each round so no setting always follows the same one.
    for (let k = 0; k < settings.length; k++) {
      const setting = settings[(k + i) % settings.length];
      if (setting?.engine) setting.results.push(await setting.engine.run(i));
    }
  }
  const loadAfter = loadavg()[0] ?? 0;
  await cleanUp();

  const rows = settings.map(({ threads, streams, results }) => ({ threads, sequences: streams, streams, ...summarise(results) }));
  console.log(
    `\nbench/engine --sweep: model ${modelName} (${(modelBytes / 1e6).toFixed(1)} MB), ${tokens} tokens per stream, ${runs} rounds after 1 warm-up, direct (node-llama-cpp in process), context ${contextSize}`,
  );
  console.log(`Node ${process.version}, ${availableParallelism()} CPUs, 1-min load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after\n`);
  const pad = (text: string, width: number): string => text.padEnd(width);
  console.log(pad('threads', 9) + pad('sequences=streams', 19) + pad('TTFT ms med / p90', 22) + pad('stream tok/s med / p10', 24) + 'aggregate tok/s med / p10');
  for (const row of rows) {
    console.log(
      pad(String(row.threads), 9) +
        pad(String(row.streams), 19) +
        pad(`${row.ttftMs.median.toFixed(0)} / ${row.ttftMs.p90.toFixed(0)}`, 22) +
        pad(`${row.decodeTokPerS.median.toFixed(1)} / ${row.decodeTokPerS.p10.toFixed(1)}`, 24) +
        `${row.aggregateTokPerS.median.toFixed(1)} / ${row.aggregateTokPerS.p10.toFixed(1)}`,
    );
  }
  console.log('');
  console.log(JSON.stringify(roundDeep({ bench: 'engine-sweep', size, model: modelName, modelBytes, tokens, runs, contextSize, node: process.version, cpus: availableParallelism(), loadAverage: [loadBefore, loadAfter], settings: rows })));
}

try {
  await (sweep ? mainSweep() : main());
} catch (error) {
  console.error('bench failed:', error);
  await cleanUp();
  process.exitCode = 1;
}
clearTimeout(timer);
