/**
 * Parlance's embedded engine against llama.cpp's own llama-server, on the same GGUF with the same context,
 * threads, sequences and sampling, both over the OpenAI chat API (streamed), in one run.
 *
 *   bench/peers/build-llama-server.sh            # once: builds .cache/peers/llama.cpp/build/bin/llama-server
 *   npx tsx bench/engine-peer.ts [--size bench|tiny] [--model file.gguf] [--threads 1,2] [--streams 1,4]
 *                                [--tokens N] [--runs R] [--prompt-words W] [--conversations 2,4] [--turns K] [--turn-words W]
 *                                [--conversation-threads T] [--llama-server PATH] [--timeout S]
 *
 * Without a built llama-server it says so and exits 0; it never builds or downloads anything itself.
 *
 * Defaults: the bench-size random GGUF (tiny-model.ts, ~305 MB, written to a temporary directory), threads 1
 * and 2, 4 sequences of 2,048 tokens on both sides (llama-server: -np 4 -c 8192, so 2,048 per slot, as
 * node-llama-cpp gives each sequence its own 2,048), batch 512 on both, flash attention left at both
 * sides' default (auto), temperature 0.8, top-p 0.95, top-k 40, min-p 0.05 (both sides' defaults), a
 * fixed seed per stream, 128 tokens per stream, 6 runs per case.
 *
 * For each thread count both servers run at once, idle between requests, and every case alternates which
 * goes first (A B, B A, ...), so machine noise hits both:
 * - start to ready: spawn until /ready (Parlance, the compiled `dist/src/cli.js`, built first with
 *   `tsc -p tsconfig.build.json`) or /health (llama-server) answers 200; then, after 3 s idle, CPU used over
 *   5 s idle (/proc/PID/stat) and resident memory, all and private (RssAnon: without the mapped model);
 * - decode tok/s with 1 and with K streams at once: (tokens − 1) / (end − first text) per stream, and the
 *   aggregate (all tokens / wall time); each run's prompts start with the run's index so no cache is reused;
 * - TTFT for a long prompt (95 words, ~500 tokens with the random model's small vocabulary; new each run),
 *   4 tokens asked;
 * - CPU ms per 1,000 generated tokens: the server's utime + stime over the decode runs.
 * Then, at --conversation-threads (default the first of --threads), fresh servers and C conversations
 * (2, then 4) taking turns for K turns (8): each turn resends the conversation's whole history plus a new
 * 26-word message (~140 tokens) and asks for 32 tokens, turn by turn across the conversations, on both servers
 * alternately. TTFT by turn shows whether a conversation's history comes from the cache (flat) or is
 * evaluated again (growing).
 *
 * Prints tables and one JSON line (the last line). Every process started here is stopped at the end, on
 * error, on Ctrl-C and when --timeout (default 1,800 s) runs out.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { createParser } from 'eventsource-parser';
import { benchModelOptions, writeTinyModel } from '../src/engines/llama-cpp/tiny-model.js';
import { freePort } from '../test/fixtures/net.js';
import { median, percentile, processCpuMs, processMemoryMb } from './lib/measure.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const defaultLlamaServer = join(repoRoot, '.cache/peers/llama.cpp/build/bin/llama-server');

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    size: { type: 'string', default: 'bench' },
    model: { type: 'string' },
    threads: { type: 'string', default: '1,2' },
    streams: { type: 'string', default: '1,4' },
    sequences: { type: 'string', default: '4' },
    'context-size': { type: 'string', default: '2048' },
    tokens: { type: 'string', default: '128' },
    runs: { type: 'string', default: '6' },
    'prompt-words': { type: 'string', default: '95' },
    'turn-words': { type: 'string', default: '26' },
    conversations: { type: 'string', default: '2,4' },
    turns: { type: 'string', default: '8' },
    'conversation-threads': { type: 'string' },
    'llama-server': { type: 'string', default: defaultLlamaServer },
    seed: { type: 'string', default: '42' },
    timeout: { type: 'string', default: '1800' },
  },
  strict: true,
});

function positiveInt(name: string, raw: string | undefined): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return value;
}
const intList = (name: string, raw: string): number[] => raw.split(',').map((part) => positiveInt(name, part.trim()));

const size = flags.size;
if (size !== 'tiny' && size !== 'bench') throw new Error(`--size must be tiny or bench, got ${size}`);
const modelName = flags.model === undefined ? `parlance-${size}` : basename(flags.model);
const threadCounts = intList('threads', flags.threads);
const streamCounts = intList('streams', flags.streams);
const sequences = positiveInt('sequences', flags.sequences);
const contextSize = positiveInt('context-size', flags['context-size']);
const tokens = positiveInt('tokens', flags.tokens);
const runs = positiveInt('runs', flags.runs);
const promptWords = positiveInt('prompt-words', flags['prompt-words']);
const turnWords = positiveInt('turn-words', flags['turn-words']);
const conversationCounts = intList('conversations', flags.conversations);
const turns = positiveInt('turns', flags.turns);
const conversationThreads = positiveInt('conversation-threads', flags['conversation-threads'] ?? String(threadCounts[0]));
const seed = positiveInt('seed', flags.seed);
const timeoutS = positiveInt('timeout', flags.timeout);
const llamaServerBin = flags['llama-server'];
const sampling = { temperature: 0.8, top_p: 0.95 } as const;
if (Math.max(...streamCounts, ...conversationCounts) > sequences) throw new Error(`--streams and --conversations must not exceed --sequences (${sequences})`);

// ---------------------------------------------------------------------------
// Lifetime: everything started here is stopped on every way out
// ---------------------------------------------------------------------------

const deadline = new AbortController();
const cleanups: (() => Promise<void>)[] = [];
const children = new Set<ChildProcess>();

async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((error: unknown) => console.error('cleanup failed:', error));
}
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// The two servers
// ---------------------------------------------------------------------------

type PeerName = 'parlance' | 'llama-server';

interface Server {
  readonly name: PeerName;
  readonly url: string;
  readonly pid: number;
  readonly model: string;
  readonly readyMs: number;
  stop(): Promise<void>;
}

async function spawnServer(name: PeerName, command: string, args: readonly string[], readyPath: string, port: number, model: string): Promise<Server> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PARLANCE_') && !key.startsWith('LLAMA_')) env[key] = value;
  const started = performance.now();
  const child = spawn(command, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  // Keep the pipes drained (a full pipe blocks a server's logging) and the tail for error messages.
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name}`);
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
    }
    children.delete(child);
  };
  cleanups.push(stop);
  const url = `http://127.0.0.1:${port}`;
  const readyBy = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited before it was ready:\n${tail}`);
    if (Date.now() > readyBy) throw new Error(`${name} was not ready after 120 s:\n${tail}`);
    const ok = await fetch(`${url}${readyPath}`, { signal: deadline.signal }).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) break;
    await sleep(10);
  }
  return { name, url, pid, model, readyMs: performance.now() - started, stop };
}

async function startParlance(modelPath: string, dataDir: string, threads: number): Promise<Server> {
  const port = await freePort();
  const args = [
    'dist/src/cli.js', 'serve',
    '--model', modelPath,
    '--host', '127.0.0.1',
    '--port', String(port),
    '--threads', String(threads),
    '--sequences', String(sequences),
    '--context-size', String(contextSize),
    '--queue-length', String(2 * sequences),
    '--gpu', 'off',
    '--models-dir', join(dataDir, 'models'),
    '--data-dir', join(dataDir, `data-${port}`),
    '--log-level', 'warn',
  ];
  const server = await spawnServer('parlance', process.execPath, args, '/ready', port, '');
  // Right after start on a busy machine the overload check may still answer 503: ask again.
  let response = await fetch(`${server.url}/v1/models`, { signal: deadline.signal });
  for (let tries = 0; response.status === 503 && tries < 50; tries++) {
    await sleep(200);
    response = await fetch(`${server.url}/v1/models`, { signal: deadline.signal });
  }
  const models = (await response.json()) as { data?: { id: string }[] };
  const model = models.data?.[0]?.id;
  if (!model) throw new Error('Parlance lists no model');
  return { ...server, model };
}

/** Which llama.cpp binary Parlance loaded (`/health`): the prebuilt one or a local build (`parlance engine build`), and its dispatch loop. */
async function parlanceBinary(server: Server): Promise<string> {
  const health = (await (await fetch(`${server.url}/health`, { signal: deadline.signal })).json()) as { engines?: { name: string; llama_cpp?: { binary: string; gpu: string | false; dispatch_loop: string } }[] };
  const runtime = health.engines?.find((engine) => engine.llama_cpp !== undefined)?.llama_cpp;
  return runtime === undefined ? 'unknown' : `${runtime.binary} (${runtime.gpu === false ? 'CPU' : runtime.gpu}), dispatch loop ${runtime.dispatch_loop}`;
}

async function startLlamaServer(modelPath: string, threads: number): Promise<Server> {
  const port = await freePort();
  const args = [
    '-m', modelPath,
    '--host', '127.0.0.1',
    '--port', String(port),
    '-t', String(threads),
    '-tb', String(threads),
    '-np', String(sequences),
    '-c', String(contextSize * sequences),
    '-b', '512',
    '-ub', '512',
    '-ngl', '0',
    '--no-webui',
  ];
  return await spawnServer('llama-server', llamaServerBin, args, '/health', port, modelName);
}

// ---------------------------------------------------------------------------
// Streaming one chat completion
// ---------------------------------------------------------------------------

interface Message {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

interface StreamResult {
  readonly startedAt: number;
  readonly ttftMs: number;
  readonly endedAt: number;
  readonly completionTokens: number;
  readonly promptTokens: number;
  /** Prompt tokens the server took from its cache, as it reports them (undefined: it did not say). */
  readonly cachedTokens: number | undefined;
  readonly text: string;
}

interface StreamChunk {
  choices?: { delta?: { content?: string | null } }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } };
  /** llama-server's own figures, on the last chunk. */
  timings?: { cache_n?: number; prompt_n?: number };
  error?: { message?: string };
}

async function streamChat(server: Server, messages: readonly Message[], maxTokens: number, streamSeed: number): Promise<StreamResult> {
  const body = JSON.stringify({ model: server.model, messages, stream: true, stream_options: { include_usage: true }, max_tokens: maxTokens, seed: streamSeed, ...sampling });
  const send = (): Promise<Response> => fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: deadline.signal });
  const startedAt = performance.now();
  // A kept-alive connection the server closed while idle (llama-server's keep-alive lasts 5 s) fails
  // before any answer: send once more, on a new connection.
  const response = await send().catch(async (error: unknown) => {
    if ((error as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw error;
    return await send();
  });
  if (!response.ok || !response.body) throw new Error(`${server.name}: HTTP ${response.status}: ${await response.text()}`);
  let firstAt = 0;
  let deltas = 0;
  let usage: StreamChunk['usage'];
  let timings: StreamChunk['timings'];
  const parts: string[] = [];
  const parser = createParser({
    onEvent: (event) => {
      if (event.data === '[DONE]') return;
      const chunk = JSON.parse(event.data) as StreamChunk;
      if (chunk.error) throw new Error(`${server.name}: error in the stream: ${chunk.error.message ?? event.data}`);
      const text = chunk.choices?.[0]?.delta?.content;
      if (text) {
        if (!firstAt) firstAt = performance.now();
        deltas++;
        parts.push(text);
      }
      if (chunk.usage) usage = chunk.usage;
      if (chunk.timings) timings = chunk.timings;
    },
  });
  const decoder = new TextDecoder();
  for await (const bytes of response.body) parser.feed(decoder.decode(bytes, { stream: true }));
  parser.feed(decoder.decode());
  const endedAt = performance.now();
  const promptTokens = usage?.prompt_tokens ?? (timings ? (timings.cache_n ?? 0) + (timings.prompt_n ?? 0) : 0);
  return {
    startedAt,
    ttftMs: firstAt - startedAt,
    endedAt,
    completionTokens: usage?.completion_tokens ?? deltas,
    promptTokens,
    cachedTokens: usage?.prompt_tokens_details?.cached_tokens ?? timings?.cache_n,
    text: parts.join(''),
  };
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

const vocabulary = ['river', 'stone', 'lantern', 'market', 'winter', 'garden', 'harbor', 'letter', 'mountain', 'window', 'engine', 'meadow', 'signal', 'bridge', 'orchard', 'candle'];
/** `count` words of plain text, different for each `salt`. */
function words(count: number, salt: number): string {
  return Array.from({ length: count }, (_, i) => vocabulary[(i * 7 + salt * 13 + ((i * salt) % 5)) % vocabulary.length]).join(' ');
}

function decodeTokPerS(s: StreamResult): number {
  const decodeMs = s.endedAt - (s.startedAt + s.ttftMs);
  return decodeMs > 0 && s.completionTokens > 1 ? ((s.completionTokens - 1) * 1000) / decodeMs : 0;
}

interface RunResult {
  readonly streams: readonly StreamResult[];
  readonly cpuMs: number;
}

async function measured(server: Server, work: () => Promise<StreamResult[]>): Promise<RunResult> {
  const before = await processCpuMs(server.pid);
  const results = await work();
  return { streams: results, cpuMs: (await processCpuMs(server.pid)) - before };
}

function decodeRun(server: Server, run: number, streams: number): Promise<RunResult> {
  return measured(server, () =>
    Promise.all(
      Array.from({ length: streams }, (_, stream) =>
        streamChat(
          server,
          [
            { role: 'system', content: `Run ${run}.${stream}. You are a helpful assistant. Answer in full sentences.` },
            { role: 'user', content: 'Tell me a long story about a cat, a dog and the time they spent together in the city.' },
          ],
          tokens,
          seed + stream,
        ),
      ),
    ),
  );
}

function longPromptRun(server: Server, run: number): Promise<RunResult> {
  return measured(server, async () => [await streamChat(server, [{ role: 'system', content: `Run ${run}. Summarise what follows.` }, { role: 'user', content: words(promptWords, run) }], 4, seed)]);
}

interface CaseSummary {
  ttftMs: { median: number; p90: number };
  decodeTokPerS: { median: number; p10: number };
  aggregateTokPerS: { median: number; p10: number };
  cpuMsPer1kTokens: number;
  promptTokens: number;
  completionTokens: number;
}

function summarise(results: readonly RunResult[]): CaseSummary {
  const all = results.flatMap((run) => run.streams);
  const aggregate = results.map((run) => {
    const start = Math.min(...run.streams.map((s) => s.startedAt));
    const end = Math.max(...run.streams.map((s) => s.endedAt));
    return (run.streams.reduce((sum, s) => sum + s.completionTokens, 0) * 1000) / (end - start);
  });
  const totalTokens = all.reduce((sum, s) => sum + s.completionTokens, 0);
  const decode = all.map(decodeTokPerS);
  const ttft = all.map((s) => s.ttftMs);
  return {
    ttftMs: { median: median(ttft), p90: percentile(ttft, 90) },
    decodeTokPerS: { median: median(decode), p10: percentile(decode, 10) },
    aggregateTokPerS: { median: median(aggregate), p10: percentile(aggregate, 10) },
    cpuMsPer1kTokens: (results.reduce((sum, run) => sum + run.cpuMs, 0) * 1000) / totalTokens,
    promptTokens: median(all.map((s) => s.promptTokens)),
    completionTokens: totalTokens,
  };
}

/** `runs` runs of a case on both servers, alternating which goes first; the per-run ratio's median is "paired". */
async function paired(servers: readonly [Server, Server], run: (server: Server, index: number) => Promise<RunResult>): Promise<{ parlance: RunResult[]; peer: RunResult[] }> {
  const [parlance, peer] = servers;
  await run(parlance, 0); // warm-up
  await run(peer, 0);
  const results = { parlance: [] as RunResult[], peer: [] as RunResult[] };
  for (let i = 1; i <= runs; i++) {
    if (i % 2) {
      results.parlance.push(await run(parlance, i));
      results.peer.push(await run(peer, i));
    } else {
      results.peer.push(await run(peer, i));
      results.parlance.push(await run(parlance, i));
    }
  }
  return results;
}

const pairedRatio = (a: readonly RunResult[], b: readonly RunResult[], figure: (run: RunResult) => number): number =>
  median(a.map((run, i) => figure(run) / figure(b[i] ?? run)));
const runAggregate = (run: RunResult): number => summarise([run]).aggregateTokPerS.median;
const runTtft = (run: RunResult): number => median(run.streams.map((s) => s.ttftMs));

async function idleFigures(server: Server): Promise<{ readyMs: number; idleCpuMsPer10s: number; rssMb: number; privateMb: number }> {
  const before = await processCpuMs(server.pid);
  await sleep(5000);
  const cpu = (await processCpuMs(server.pid)) - before;
  return { readyMs: server.readyMs, idleCpuMsPer10s: cpu * 2, ...(await processMemoryMb(server.pid)) };
}

interface Conversation {
  readonly messages: Message[];
}

/** C conversations taking turns for `turns` turns on both servers alternately; TTFT and cached tokens by turn. */
async function interleaved(servers: readonly [Server, Server], count: number): Promise<Record<PeerName, { ttftMs: number[]; cachedTokens: (number | null)[]; promptTokens: number[] }>> {
  const byTurn = {
    parlance: { ttftMs: [] as number[], cachedTokens: [] as (number | null)[], promptTokens: [] as number[] },
    'llama-server': { ttftMs: [] as number[], cachedTokens: [] as (number | null)[], promptTokens: [] as number[] },
  };
  const conversations = new Map<PeerName, Conversation[]>(
    servers.map((server) => [server.name, Array.from({ length: count }, (_, c) => ({ messages: [{ role: 'system', content: `Conversation ${c} of ${count}. You are assistant number ${c}, patient and precise.` }] }))]),
  );
  for (let turn = 1; turn <= turns; turn++) {
    const ttft = new Map<PeerName, number[]>();
    const cached = new Map<PeerName, number[]>();
    const prompt = new Map<PeerName, number[]>();
    for (let c = 0; c < count; c++) {
      const order = (turn + c) % 2 ? servers : ([servers[1], servers[0]] as const);
      for (const server of order) {
        const conversation = conversations.get(server.name)?.[c];
        if (!conversation) continue;
        conversation.messages.push({ role: 'user', content: `Turn ${turn}. ${words(turnWords, turn * 31 + c)}` });
        const result = await streamChat(server, conversation.messages, 32, seed + c);
        conversation.messages.push({ role: 'assistant', content: result.text });
        ttft.set(server.name, [...(ttft.get(server.name) ?? []), result.ttftMs]);
        if (result.cachedTokens !== undefined) cached.set(server.name, [...(cached.get(server.name) ?? []), result.cachedTokens]);
        prompt.set(server.name, [...(prompt.get(server.name) ?? []), result.promptTokens]);
      }
    }
    for (const server of servers) {
      const figures = byTurn[server.name];
      figures.ttftMs.push(median(ttft.get(server.name) ?? []));
      const cachedHere = cached.get(server.name);
      figures.cachedTokens.push(cachedHere ? median(cachedHere) : null);
      figures.promptTokens.push(median(prompt.get(server.name) ?? []));
    }
  }
  return byTurn;
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

const round = (value: number, digits = 1): number => Number(value.toFixed(digits));
function roundDeep<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? round(v, 2) : v))) as T;
}
const pad = (text: string | number, width: number): string => String(text).padEnd(width);

async function main(): Promise<void> {
  if (!existsSync(llamaServerBin)) {
    console.log(`bench/engine-peer: skipped: no llama-server at ${llamaServerBin}. Build one with bench/peers/build-llama-server.sh (from node-llama-cpp's bundled llama.cpp, no download), or pass --llama-server PATH.`);
    return;
  }
  const peerVersion = await promisify(execFile)(llamaServerBin, ['--version']).then(
    ({ stdout, stderr }) => `${stdout}${stderr}`.trim().split('\n').join('; '),
    () => 'unknown',
  );
  console.log('bench/engine-peer: building the server (tsc -p tsconfig.build.json) ...');
  await promisify(execFile)(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: repoRoot });

  const dataDir = await mkdtemp(join(tmpdir(), 'parlance-peer-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  let modelPath = flags.model;
  if (modelPath === undefined) {
    modelPath = join(dataDir, `parlance-${size}.gguf`);
    await writeTinyModel(modelPath, size === 'bench' ? benchModelOptions : {});
  }
  const modelBytes = (await stat(modelPath)).size;
  const loadBefore = loadavg()[0] ?? 0;
  const report: Record<string, unknown> = {};

  console.log(`\nbench/engine-peer: model ${modelName} (${(modelBytes / 1e6).toFixed(1)} MB), ${sequences} sequences × ${contextSize} tokens, ${tokens} tokens per stream, ${runs} runs per case after a warm-up`);
  console.log(`llama-server: ${llamaServerBin} (${peerVersion})`);
  console.log(`Node ${process.version}, ${availableParallelism()} CPUs, 1-min load average ${loadBefore.toFixed(2)} at the start\n`);

  for (const threads of threadCounts) {
    const parlance = await startParlance(modelPath, dataDir, threads);
    const peer = await startLlamaServer(modelPath, threads);
    const servers = [parlance, peer] as const;
    const binary = await parlanceBinary(parlance);
    console.log(`threads ${threads}: Parlance's llama.cpp: ${binary}`);
    const idle = { parlance: await idleFigures(parlance), 'llama-server': await idleFigures(peer) };
    const cases: Record<string, { parlance: CaseSummary; 'llama-server': CaseSummary; ratio: number; pairedRatio: number; figure: string }> = {};
    for (const streams of streamCounts) {
      const results = await paired(servers, (server, run) => decodeRun(server, run, streams));
      const p = summarise(results.parlance);
      const l = summarise(results.peer);
      const figure = streams === 1 ? 'decode tok/s' : 'aggregate tok/s';
      const pick = (s: CaseSummary): number => (streams === 1 ? s.decodeTokPerS.median : s.aggregateTokPerS.median);
      const perRun = streams === 1 ? (run: RunResult): number => median(run.streams.map(decodeTokPerS)) : runAggregate;
      cases[`decode-${streams}`] = { parlance: p, 'llama-server': l, ratio: pick(p) / pick(l), pairedRatio: pairedRatio(results.parlance, results.peer, perRun), figure };
    }
    const long = await paired(servers, longPromptRun);
    const lp = summarise(long.parlance);
    const ll = summarise(long.peer);
    cases['long-prompt-ttft'] = { parlance: lp, 'llama-server': ll, ratio: lp.ttftMs.median / ll.ttftMs.median, pairedRatio: pairedRatio(long.parlance, long.peer, runTtft), figure: 'TTFT ms' };
    await parlance.stop();
    await peer.stop();

    console.log(`threads ${threads}: start to ready ms, idle CPU ms per 10 s, RSS MB (private)`);
    for (const name of ['parlance', 'llama-server'] as const) {
      const f = idle[name];
      console.log(`  ${pad(name, 14)}${pad(f.readyMs.toFixed(0), 8)}${pad(f.idleCpuMsPer10s.toFixed(0), 6)}${f.rssMb.toFixed(0)} (${f.privateMb.toFixed(0)})`);
    }
    console.log(`threads ${threads}: ${pad('case', 20)}${pad('figure', 18)}${pad('Parlance', 12)}${pad('llama-server', 14)}${pad('ratio (paired)', 18)}${pad('CPU ms/1k tok P / L', 22)}TTFT ms P / L`);
    for (const [name, c] of Object.entries(cases)) {
      const value = (s: CaseSummary): number => (c.figure === 'TTFT ms' ? s.ttftMs.median : c.figure === 'decode tok/s' ? s.decodeTokPerS.median : s.aggregateTokPerS.median);
      console.log(
        `           ${pad(name, 20)}${pad(c.figure, 18)}${pad(value(c.parlance).toFixed(1), 12)}${pad(value(c['llama-server']).toFixed(1), 14)}${pad(`${c.ratio.toFixed(2)} (${c.pairedRatio.toFixed(2)})`, 18)}` +
          `${pad(`${c.parlance.cpuMsPer1kTokens.toFixed(0)} / ${c['llama-server'].cpuMsPer1kTokens.toFixed(0)}`, 22)}${c.parlance.ttftMs.median.toFixed(0)} / ${c['llama-server'].ttftMs.median.toFixed(0)}`,
      );
    }
    const promptSizes = cases['long-prompt-ttft'];
    console.log(`           long prompt: ${promptSizes?.parlance.promptTokens ?? '?'} tokens (Parlance's count), ${promptSizes?.['llama-server'].promptTokens ?? '?'} (llama-server's)\n`);
    report[`threads-${threads}`] = { binary, idle, cases };
  }

  const parlance = await startParlance(modelPath, dataDir, conversationThreads);
  const peer = await startLlamaServer(modelPath, conversationThreads);
  for (const count of conversationCounts) {
    const byTurn = await interleaved([parlance, peer], count);
    console.log(`${count} conversations taking turns, threads ${conversationThreads}: median TTFT ms by turn (cached prompt tokens)`);
    for (const name of ['parlance', 'llama-server'] as const) {
      const f = byTurn[name];
      console.log(`  ${pad(name, 14)}${f.ttftMs.map((ms, k) => `${ms.toFixed(0)} (${f.cachedTokens[k] ?? '?'}/${f.promptTokens[k] ?? '?'})`).join('  ')}`);
    }
    console.log('');
    report[`conversations-${count}`] = byTurn;
  }
  await parlance.stop();
  await peer.stop();
  const loadAfter = loadavg()[0] ?? 0;
  console.log(`1-min load average ${loadBefore.toFixed(2)} at the start, ${loadAfter.toFixed(2)} at the end\n`);
  console.log(
    JSON.stringify(
      roundDeep({ bench: 'engine-peer', model: modelName, modelBytes, sequences, contextSize, tokens, runs, promptWords, turnWords, turns, conversationThreads, llamaServer: peerVersion, node: process.version, cpus: availableParallelism(), loadAverage: [loadBefore, loadAfter], ...report }),
    ),
  );
}

try {
  await main();
} catch (error) {
  console.error('bench failed:', error);
  process.exitCode = 1;
}
await cleanUp();
clearTimeout(timer);
