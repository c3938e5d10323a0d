/**
 * Relay benchmark: what Parlance costs when it fronts an OpenAI-compatible
 * engine, measured in one invocation against going to the engine directly and
 * against the seed's own FastAPI stack doing the same relay.
 *
 *   npx tsx bench/relay.ts [options]        (npm run bench:relay -- [options])
 *
 * Three paths, each a server process of its own, all started here:
 * - direct:   the client → the fake engine
 * - parlance: the client → Parlance (compiled, dist/src/cli.js, fronting the
 *             fake engine with --upstream, embedded engine off) → the fake engine
 * - seed:     the client → the seed's FastAPI app (../shared/baseline/seed_app.py
 *             on Debian's uvicorn, PER_CHUNK_SLEEP=0) → the fake engine
 * With --baseline-cli OTHER/dist/src/cli.js a fourth path, "parlance-base",
 * runs another build of Parlance (say, the last commit's, built in a scratch
 * directory) in the same run, for before/after figures.
 *
 * Phases (each starts its own fake engine and servers, warms them up, and
 * stops them at its end; within a phase, paths run one after another, round
 * after round, so drift hits every path alike; a figure is the median over
 * rounds):
 *
 * 1. burst: ../shared/baseline/fake-engine.mjs streams --tokens tokens with no
 *    delay, so each stream arrives in a burst, and for each concurrency C of
 *    --concurrency the client keeps C streams open back to back until the
 *    level's --streams count is done. This is the CPU figure: the server
 *    process's utime+stime (/proc/PID/stat, all threads) over the run, per
 *    1,000 tokens the client received (for "direct", the fake engine's own).
 *    At C > 1 the server is saturated, so TTFT here includes queueing behind
 *    other streams' bursts.
 * 2. latency: the same fake engine with ITL_MS=--latency-itl and
 *    --latency-tokens tokens, at --latency-concurrency (--latency-rounds
 *    rounds): the server is not saturated, so TTFT differences are the
 *    relay's own latency.
 * 3. paced: --paced streams of --paced-chunks tokens --paced-ms apart, opened
 *    evenly over --paced-ramp-ms and held to their end, first directly (the
 *    fake engine's and client's own jitter, for reference), then through a
 *    fresh Parlance. Reported: errors, the streams open at once, the worst gap
 *    between two tokens of any stream, and Parlance's resident memory (VmRSS)
 *    idle, at the peak, after the streams closed, and after a full GC (see
 *    `paced` for the exact sequence; the paced Parlance servers run with a
 *    DevTools port on 127.0.0.1 so that the bench can ask for the GC).
 *    --paced-fake picks the upstream: "ticked" (bench/relay-fake.mjs: one
 *    timer for all streams, as a batching engine emits a token for every
 *    sequence per step; default) or "baseline" (fake-engine.mjs: a timer per
 *    stream per token, which alone takes most of a core at 50,000 tokens/s).
 *
 * TTFT is request start → first non-empty token, at the client; "added" TTFT
 * is Parlance's minus direct's at the same percentile and concurrency.
 *
 * Prints a table per phase, the targets with a verdict each, and one JSON line
 * (the last). Every process started here is stopped at the end, on error, on
 * Ctrl-C and when --timeout (seconds) runs out. --cpu-prof DIR writes V8 CPU
 * profiles of the Parlance processes there when they exit.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LoadClient, type Dialect, type Summary } from './relay-load.js';
import { freePort, sleep, startChild, waitReady, type Child } from './relay-procs.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const baselineDir = fileURLToPath(new URL('../../shared/baseline/', import.meta.url));
const PYTHON = '/usr/bin/python3';

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,10,50' },
    streams: { type: 'string', default: '500,1000,2000' },
    rounds: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '64' },
    'latency-concurrency': { type: 'string', default: '1,10' },
    'latency-streams': { type: 'string', default: '200,600' },
    'latency-itl': { type: 'string', default: '5' },
    'latency-tokens': { type: 'string', default: '8' },
    'latency-rounds': { type: 'string', default: '1' },
    paced: { type: 'string', default: '1000' },
    'paced-chunks': { type: 'string', default: '64' },
    'paced-ms': { type: 'string', default: '20' },
    'paced-ramp-ms': { type: 'string', default: '1000' },
    'paced-fake': { type: 'string', default: 'ticked' },
    'after-wait': { type: 'string', default: '10' },
    'no-seed': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'baseline-cli': { type: 'string' },
    timeout: { type: 'string', default: '1200' },
  },
  strict: true,
});

function int(name: string, raw: string | undefined, min = 1): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${raw}`);
  return value;
}
function intList(name: string, raw: string | undefined): number[] {
  return (raw ?? '').split(',').filter((part) => part.trim() !== '').map((part) => int(name, part.trim()));
}

const burstLevels = intList('concurrency', flags.concurrency);
const burstCounts = intList('streams', flags.streams);
if (burstCounts.length !== burstLevels.length) throw new Error('--streams needs one count per --concurrency level');
const latencyLevels = intList('latency-concurrency', flags['latency-concurrency']);
const latencyCounts = intList('latency-streams', flags['latency-streams']);
if (latencyCounts.length !== latencyLevels.length) throw new Error('--latency-streams needs one count per --latency-concurrency level');
const rounds = int('rounds', flags.rounds);
const latencyRounds = int('latency-rounds', flags['latency-rounds']);
const tokens = int('tokens', flags.tokens);
const latencyItl = int('latency-itl', flags['latency-itl'], 0);
const latencyTokens = int('latency-tokens', flags['latency-tokens']);
const pacedStreams = int('paced', flags.paced, 0);
const pacedChunks = int('paced-chunks', flags['paced-chunks']);
const pacedMs = int('paced-ms', flags['paced-ms']);
const pacedRampMs = int('paced-ramp-ms', flags['paced-ramp-ms'], 0);
const pacedFake = flags['paced-fake'];
if (pacedFake !== 'ticked' && pacedFake !== 'baseline') throw new Error(`--paced-fake must be ticked or baseline, got ${pacedFake}`);
const afterWaitMs = int('after-wait', flags['after-wait']) * 1000;
const timeoutS = int('timeout', flags.timeout);
const baselineCli = flags['baseline-cli'];

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

const workDir = mkdtempSync(join(tmpdir(), 'parlance-relay-'));
const children = new Set<Child>();
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    await Promise.allSettled([...children].map((child) => child.stop()));
    rmSync(workDir, { recursive: true, force: true });
  })());
}
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
const deadline = setTimeout(() => {
  process.stderr.write(`relay bench: --timeout ${timeoutS}s reached, stopping\n`);
  void cleanup().then(() => process.exit(124));
}, timeoutS * 1000);
deadline.unref();

/** The environment of a child: ours without Parlance's own settings, so none leak into the measured server. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PARLANCE_')) env[key] = value;
  return { ...env, ...extra };
}

interface Server {
  readonly child: Child;
  readonly url: string;
  /** The DevTools port, for servers started with one (see forceGc). */
  readonly inspectPort?: number;
}

let serial = 0;

async function startFake(script: string, itlMs: number, tokenCount: number): Promise<Server> {
  const port = await freePort();
  const name = `fake-${++serial}`;
  const child = startChild(name, process.execPath, [script], childEnv({ PORT: String(port), TOKENS: String(tokenCount), ITL_MS: String(itlMs) }), join(workDir, `${name}.log`));
  children.add(child);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, `${url}/v1/models`);
  return { child, url };
}

async function startParlance(label: string, upstream: string, cli: string, inspect = false): Promise<Server> {
  const port = await freePort();
  const name = `${label}-${++serial}`;
  const nodeFlags = flags['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', flags['cpu-prof'], '--cpu-prof-name', `${name}.cpuprofile`];
  const inspectPort = inspect ? await freePort() : undefined;
  if (inspectPort !== undefined) nodeFlags.push(`--inspect=127.0.0.1:${inspectPort}`);
  const args = [...nodeFlags, cli, 'serve', '--no-embedded', '--upstream', `fake=${upstream}/v1`, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn', '--data-dir', join(workDir, `${name}-data`)];
  const child = startChild(name, process.execPath, args, childEnv({ NODE_ENV: 'production' }), join(workDir, `${name}.log`));
  children.add(child);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, `${url}/ready`);
  return inspectPort === undefined ? { child, url } : { child, url, inspectPort };
}

/**
 * Runs a full garbage collection in a server started with a DevTools port
 * (bench/relay-gc.mjs), so memory readings show what is held rather than what
 * V8 has not collected yet: an idle server allocates too little to trigger a
 * collection of its own for minutes.
 */
async function forceGc(server: Server): Promise<void> {
  if (server.inspectPort === undefined) return;
  const script = fileURLToPath(new URL('./relay-gc.mjs', import.meta.url));
  const nodeFlags = typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function' ? [] : ['--experimental-websocket'];
  const result = spawnSync(process.execPath, [...nodeFlags, script, String(server.inspectPort)], { encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) log(`  forcing a GC failed: ${result.stderr.trim().split('\n').pop() ?? ''}`);
  await sleep(1000);
}

function seedAvailable(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  const check = spawnSync(PYTHON, ['-c', 'import fastapi, uvicorn, httpx, multipart'], { encoding: 'utf8' });
  if (check.status !== 0) {
    return `Debian's FastAPI stack is missing (${check.stderr.trim().split('\n').pop() ?? ''}); install it with: apt-get install -y python3-fastapi python3-uvicorn python3-httpx python3-multipart`;
  }
  return undefined;
}

async function startSeed(upstream: string): Promise<Server> {
  const port = await freePort();
  const name = `seed-${++serial}`;
  const args = ['-m', 'uvicorn', 'seed_app:app', '--app-dir', baselineDir, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warning', '--no-access-log'];
  const child = startChild(name, PYTHON, args, childEnv({ UPSTREAM: upstream, PER_CHUNK_SLEEP: '0' }), join(workDir, `${name}.log`));
  children.add(child);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, `${url}/`);
  return { child, url };
}

async function stopChild(child: Child): Promise<void> {
  await child.stop();
  children.delete(child);
}

// ---------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------

type PathName = 'direct' | 'parlance' | 'parlance-base' | 'seed';
const PATH_ORDER: readonly PathName[] = ['direct', 'parlance', 'parlance-base', 'seed'];

interface Path {
  readonly name: PathName;
  readonly server: Child;
  readonly client: LoadClient;
}

interface RunFigures {
  readonly cpuPer1kTokens: number;
  readonly summary: Summary;
}

function makePath(name: PathName, server: Server, dialect: Dialect, tokenCount: number): Path {
  const path = dialect === 'seed' ? '/completion' : '/v1/chat/completions';
  return { name, server: server.child, client: new LoadClient({ url: new URL(path, server.url), dialect, tokens: tokenCount, model: 'fake' }) };
}

async function measure(path: Path, run: () => Promise<Summary>): Promise<RunFigures> {
  const before = path.server.cpuMs();
  const summary = await run();
  const cpuMs = path.server.cpuMs() - before;
  return { cpuPer1kTokens: summary.tokens === 0 ? Number.NaN : (cpuMs * 1000) / summary.tokens, summary };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

interface LevelFigures {
  readonly concurrency: number;
  readonly streams: number;
  readonly cpuPer1kTokens: number;
  readonly ttftP50: number;
  readonly ttftP99: number;
  readonly totalP50: number;
  readonly totalP99: number;
  readonly errors: number;
  readonly errorKinds: Record<string, number>;
}

function combine(concurrency: number, runs: readonly RunFigures[]): LevelFigures {
  const errorKinds: Record<string, number> = {};
  for (const run of runs) for (const [kind, count] of Object.entries(run.summary.errors)) errorKinds[kind] = (errorKinds[kind] ?? 0) + count;
  return {
    concurrency,
    streams: runs.reduce((sum, run) => sum + run.summary.streams, 0),
    cpuPer1kTokens: median(runs.map((run) => run.cpuPer1kTokens)),
    ttftP50: median(runs.map((run) => run.summary.ttft.p50)),
    ttftP99: median(runs.map((run) => run.summary.ttft.p99)),
    totalP50: median(runs.map((run) => run.summary.total.p50)),
    totalP99: median(runs.map((run) => run.summary.total.p99)),
    errors: runs.reduce((sum, run) => sum + run.summary.errorCount, 0),
    errorKinds,
  };
}

type PhaseFigures = Partial<Record<PathName, LevelFigures[]>>;

/**
 * Starts a fake engine (`itlMs` between tokens) and every server in front of
 * it, warms each path up, then runs each concurrency level on each path,
 * `rounds` times, and stops them all.
 */
async function closedLoopPhase(
  phase: string,
  seedOk: boolean,
  itlMs: number,
  tokenCount: number,
  levels: readonly number[],
  counts: readonly number[],
  rounds: number,
): Promise<PhaseFigures> {
  const fake = await startFake(join(baselineDir, 'fake-engine.mjs'), itlMs, tokenCount);
  const servers: Server[] = [fake];
  const paths: Path[] = [makePath('direct', fake, 'openai', tokenCount)];
  try {
    const parlance = await startParlance('parlance', fake.url, join(repoRoot, 'dist/src/cli.js'));
    servers.push(parlance);
    paths.push(makePath('parlance', parlance, 'openai', tokenCount));
    if (baselineCli !== undefined) {
      const base = await startParlance('parlance-base', fake.url, baselineCli);
      servers.push(base);
      paths.push(makePath('parlance-base', base, 'openai', tokenCount));
    }
    if (seedOk) {
      const seed = await startSeed(fake.url);
      servers.push(seed);
      paths.push(makePath('seed', seed, 'seed', tokenCount));
    }
    log(`${phase}: ${tokenCount} tokens per stream, ${itlMs} ms apart; ${paths.map((path) => `${path.name} pid ${path.server.pid}`).join(', ')}`);
    // Warm-up: JIT, connection pools.
    for (const path of paths) await path.client.closedLoop(10, itlMs === 0 ? 300 : 50);

    const runs = new Map<string, RunFigures[]>();
    for (let round = 1; round <= rounds; round++) {
      for (const [index, concurrency] of levels.entries()) {
        for (const path of paths) {
          const figures = await measure(path, () => path.client.closedLoop(concurrency, counts[index] as number));
          const key = `${path.name}@${concurrency}`;
          runs.set(key, [...(runs.get(key) ?? []), figures]);
          const s = figures.summary;
          log(
            `  round ${round} c=${concurrency} ${path.name.padEnd(13)} cpu ${f1(figures.cpuPer1kTokens).padStart(6)} ms/1k tok  ttft p50 ${f2(s.ttft.p50)} p99 ${f2(s.ttft.p99)}  total p50 ${f2(s.total.p50)} p99 ${f2(s.total.p99)}  errors ${s.errorCount}`,
          );
        }
      }
    }
    const figures: PhaseFigures = {};
    for (const path of paths) figures[path.name] = levels.map((concurrency) => combine(concurrency, runs.get(`${path.name}@${concurrency}`) ?? []));
    return figures;
  } finally {
    for (const path of paths) path.client.close();
    await Promise.all(servers.map((server) => stopChild(server.child)));
  }
}

interface PacedFigures {
  readonly streams: number;
  readonly errors: number;
  readonly errorKinds: Record<string, number>;
  readonly peakOpen: number;
  readonly maxGapMs: number;
  readonly gapP99Ms: number;
  readonly ttftP50: number;
  readonly ttftP99: number;
  readonly cpuPer1kTokens: number;
  readonly rss?: MemoryFigures;
}

interface MemoryFigures {
  /** Idle after a full GC: the floor "after GC" is compared with. */
  readonly idleGcKiB: number;
  /** Idle after a full GC, then a warm-up that grows V8's young generation back to its working size, and a rest. */
  readonly idleKiB: number;
  /** The most seen while the streams ran (read every 20 ms). */
  readonly peakKiB: number;
  /** Left alone after the last stream closed, until back to idle or --after-wait. */
  readonly afterKiB: number;
  readonly afterMs: number;
  /** Then after a full GC: what is still held. */
  readonly afterGcKiB: number;
  readonly perStreamKiB: number;
}

/** "Back to idle": within 10% of what the streams added, or 2 MiB, whichever is more. */
function backToIdle(idleKiB: number, peakKiB: number, afterKiB: number): boolean {
  return afterKiB - idleKiB <= Math.max(2048, 0.1 * (peakKiB - idleKiB));
}

/** Takes resident memory as the median of five readings 200 ms apart. */
async function steadyRss(server: Child): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(server.rssKiB());
    await sleep(200);
  }
  return median(readings);
}

/**
 * Holds `count` paced streams on `path`, opened evenly over --paced-ramp-ms.
 * With `memory` (a server started with a DevTools port) the server's VmRSS is
 * taken idle after a full GC, then idle again after a warm-up has grown the
 * young generation back (the baseline of the per-stream figure: what the
 * streams add, not what a collection had shrunk), read every 20 ms while the
 * streams run, after they end until it is back to idle (see backToIdle) or
 * --after-wait has passed, and once more after a full GC (compared with the
 * first idle reading: what is still held).
 */
async function paced(path: Path, count: number, memory: Server | undefined): Promise<PacedFigures> {
  let idle = 0;
  let idleGc = 0;
  if (memory) {
    await forceGc(memory);
    idleGc = await steadyRss(path.server);
    await path.client.ramp(Math.min(200, count), 50, 10);
    await sleep(2000);
    idle = await steadyRss(path.server);
  }
  let peak = idle;
  let peakOpen = 0;
  const sampler = setInterval(() => {
    if (path.client.open > peakOpen) peakOpen = path.client.open;
    if (memory) peak = Math.max(peak, path.server.rssKiB());
  }, 20);
  const ticks = Math.max(1, Math.floor(pacedRampMs / 10));
  const figures = await measure(path, () => path.client.ramp(count, Math.ceil(count / ticks), 10));
  clearInterval(sampler);
  const s = figures.summary;
  const base: PacedFigures = {
    streams: s.streams,
    errors: s.errorCount,
    errorKinds: { ...s.errors },
    peakOpen,
    maxGapMs: s.maxGap.max,
    gapP99Ms: s.maxGap.p99,
    ttftP50: s.ttft.p50,
    ttftP99: s.ttft.p99,
    cpuPer1kTokens: figures.cpuPer1kTokens,
  };
  if (!memory) return base;
  const closedAt = performance.now();
  let after = path.server.rssKiB();
  while (!backToIdle(idle, peak, after) && performance.now() - closedAt < afterWaitMs) {
    await sleep(500);
    after = path.server.rssKiB();
  }
  const afterMs = Math.round(performance.now() - closedAt);
  await forceGc(memory);
  const afterGc = await steadyRss(path.server);
  return { ...base, rss: { idleGcKiB: idleGc, idleKiB: idle, peakKiB: peak, afterKiB: after, afterMs, afterGcKiB: afterGc, perStreamKiB: peakOpen === 0 ? Number.NaN : (peak - idle) / peakOpen } };
}

async function pacedPhase(): Promise<Partial<Record<PathName, PacedFigures>>> {
  const script = pacedFake === 'ticked' ? fileURLToPath(new URL('./relay-fake.mjs', import.meta.url)) : join(baselineDir, 'fake-engine.mjs');
  const fake = await startFake(script, pacedMs, pacedChunks);
  const results: Partial<Record<PathName, PacedFigures>> = {};
  try {
    log(`paced: ${pacedStreams} streams × ${pacedChunks} tokens, ${pacedMs} ms apart (${pacedFake} fake engine), opened over ${pacedRampMs} ms`);
    const direct = makePath('direct', fake, 'openai', pacedChunks);
    await direct.client.ramp(Math.min(100, pacedStreams), 50, 10);
    results.direct = await paced(direct, pacedStreams, undefined);
    direct.client.close();
    logPaced('direct', results.direct);
    const builds: [PathName, string][] = [['parlance', join(repoRoot, 'dist/src/cli.js')]];
    if (baselineCli !== undefined) builds.push(['parlance-base', baselineCli]);
    for (const [name, cli] of builds) {
      const server = await startParlance(name, fake.url, cli, true);
      const path = makePath(name, server, 'openai', pacedChunks);
      try {
        // Warm-up: JIT code and pools, before any reading.
        await path.client.ramp(Math.min(200, pacedStreams), 50, 10);
        results[name] = await paced(path, pacedStreams, server);
        logPaced(name, results[name]);
      } finally {
        path.client.close();
        await stopChild(server.child);
      }
    }
  } finally {
    await stopChild(fake.child);
  }
  return results;
}

function logPaced(name: string, figures: PacedFigures): void {
  const rss = figures.rss;
  const memory = rss ? `  rss idle ${rss.idleKiB} (after GC ${rss.idleGcKiB}) peak ${rss.peakKiB} after ${rss.afterKiB} (${rss.afterMs} ms), after GC ${rss.afterGcKiB} KiB` : '';
  log(`  ${name.padEnd(13)} errors ${figures.errors}  peak open ${figures.peakOpen}  worst gap ${f1(figures.maxGapMs)} ms  ttft p50 ${f1(figures.ttftP50)}${memory}`);
}

// ---------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------

const f1 = (value: number): string => (Number.isFinite(value) ? value.toFixed(1) : '–');
const f2 = (value: number): string => (Number.isFinite(value) ? value.toFixed(2) : '–');
const log = (line: string): void => void process.stderr.write(`${line}\n`);

function machine(): Record<string, string | number> {
  const python = spawnSync(PYTHON, ['-c', 'import fastapi, uvicorn, httpx, sys; print(sys.version.split()[0], fastapi.__version__, uvicorn.__version__, httpx.__version__)'], { encoding: 'utf8' });
  const [py, fastapi, uvicorn, httpx] = python.status === 0 ? python.stdout.trim().split(' ') : [];
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    ...(py ? { python: py, fastapi: fastapi ?? '', uvicorn: uvicorn ?? '', httpx: httpx ?? '' } : {}),
    loadAvg1mAtStart: Number(loadavg()[0]?.toFixed(2)),
  };
}

async function main(): Promise<void> {
  const info = machine();
  log(`relay bench on ${info['cpu']} × ${info['cores']}, ${info['memoryGiB']} GiB, node ${info['node']}; load average ${info['loadAvg1mAtStart']} at start`);
  if (Number(info['loadAvg1mAtStart']) > 0.5) log('  note: the machine is not idle; the ratios are within this run, but absolute times carry the noise');

  if (!flags['no-build']) {
    log('building (tsc -p tsconfig.build.json)…');
    const build = spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: repoRoot, encoding: 'utf8' });
    if (build.status !== 0) log(`  tsc reported errors (the build still emits):\n${build.stdout}${build.stderr}`);
  }
  if (!existsSync(join(repoRoot, 'dist/src/cli.js'))) throw new Error('dist/src/cli.js is missing: run npx tsc -p tsconfig.build.json');
  const fds = Number(spawnSync('bash', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  if (Number.isFinite(fds) && fds < 2 * pacedStreams + 256) log(`  note: ulimit -n is ${fds}; ${pacedStreams} paced streams need about ${2 * pacedStreams + 256} descriptors in the client`);

  const seedMissing = flags['no-seed'] ? 'skipped (--no-seed)' : seedAvailable();
  if (seedMissing !== undefined) log(`seed path: ${seedMissing}; measuring without it`);

  const burst = await closedLoopPhase('burst', seedMissing === undefined, 0, tokens, burstLevels, burstCounts, rounds);
  const latency =
    latencyLevels.length === 0 ? {} : await closedLoopPhase('latency', seedMissing === undefined, latencyItl, latencyTokens, latencyLevels, latencyCounts, latencyRounds);
  const pacedResults = pacedStreams > 0 ? await pacedPhase() : {};
  report(info, burst, latency, pacedResults, seedMissing);
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

interface Verdict {
  readonly target: string;
  readonly value: string;
  /** Undefined: informative, no target applies. */
  readonly met: boolean | undefined;
}

function errorText(kinds: Record<string, number>, count: number): string {
  if (count === 0) return '0';
  return `${count} (${Object.entries(kinds)
    .map(([kind, n]) => `${kind}: ${n}`)
    .join('; ')})`;
}

function phaseTable(out: string[], title: string, figures: PhaseFigures, levels: readonly number[]): void {
  out.push('');
  out.push(`| ${title} | c | streams | server CPU ms / 1k tokens | TTFT p50 | TTFT p99 | total p50 | total p99 | errors |`);
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const [index, concurrency] of levels.entries()) {
    for (const name of PATH_ORDER) {
      const row = figures[name]?.[index];
      if (!row) continue;
      out.push(`| ${name} | ${concurrency} | ${row.streams} | ${f1(row.cpuPer1kTokens)} | ${f2(row.ttftP50)} | ${f2(row.ttftP99)} | ${f2(row.totalP50)} | ${f2(row.totalP99)} | ${errorText(row.errorKinds, row.errors)} |`);
    }
  }
}

function report(info: Record<string, string | number>, burst: PhaseFigures, latency: PhaseFigures, pacedResults: Partial<Record<PathName, PacedFigures>>, seedMissing: string | undefined): void {
  const out: string[] = [];
  phaseTable(out, `burst (${tokens} tokens, no delay)`, burst, burstLevels);
  if (latencyLevels.length > 0) phaseTable(out, `latency (${latencyTokens} tokens, ${latencyItl} ms apart)`, latency, latencyLevels);

  const verdicts: Verdict[] = [];
  const top = burstLevels[burstLevels.length - 1] as number;
  for (const [index, concurrency] of burstLevels.entries()) {
    const p = burst.parlance?.[index];
    const s = burst.seed?.[index];
    if (!p || !s) continue;
    const ratio = p.cpuPer1kTokens / s.cpuPer1kTokens;
    verdicts.push({
      target: `CPU per 1k tokens, parlance / seed, burst c=${concurrency}${concurrency === top ? '' : ' (informative)'}`,
      value: `${f1(p.cpuPer1kTokens)} / ${f1(s.cpuPer1kTokens)} = ${ratio.toFixed(3)}x (≤ 0.15x)`,
      met: concurrency === top ? ratio <= 0.15 : undefined,
    });
  }
  for (const [index, concurrency] of latencyLevels.entries()) {
    const p = latency.parlance?.[index];
    const s = latency.seed?.[index];
    if (!p || !s) continue;
    verdicts.push({ target: `CPU per 1k tokens, parlance / seed, latency c=${concurrency} (informative)`, value: `${f1(p.cpuPer1kTokens)} / ${f1(s.cpuPer1kTokens)} = ${(p.cpuPer1kTokens / s.cpuPer1kTokens).toFixed(3)}x`, met: undefined });
  }
  const limits: Record<number, [number, number]> = { 1: [1, 2.5], 10: [3, 3] };
  for (const [phase, figures, levels] of [
    ['latency', latency, latencyLevels],
    ['burst', burst, burstLevels],
  ] as const) {
    for (const [index, concurrency] of levels.entries()) {
      const limit = limits[concurrency];
      const p = figures.parlance?.[index];
      const d = figures.direct?.[index];
      if (!limit || !p || !d) continue;
      const a50 = p.ttftP50 - d.ttftP50;
      const a99 = p.ttftP99 - d.ttftP99;
      verdicts.push({ target: `added TTFT p50, ${phase} c=${concurrency}`, value: `${f2(a50)} ms (≤ ${limit[0]} ms)`, met: a50 <= limit[0] });
      verdicts.push({ target: `added TTFT p99, ${phase} c=${concurrency}`, value: `${f2(a99)} ms (≤ ${limit[1]} ms)`, met: a99 <= limit[1] });
    }
  }
  let errorTotal = 0;
  for (const figures of [burst, latency]) for (const rows of Object.values(figures)) for (const row of rows) errorTotal += row.errors;
  verdicts.push({ target: 'errors in the burst and latency runs', value: String(errorTotal), met: errorTotal === 0 });

  const p = pacedResults.parlance;
  const d = pacedResults.direct;
  if (p && d) {
    out.push('');
    out.push(`| paced: ${pacedStreams} streams × ${pacedChunks} tokens, ${pacedMs} ms apart (${pacedFake} fake) | errors | peak open | worst gap ms | p99 of per-stream worst gap | TTFT p50 | TTFT p99 | server CPU ms / 1k tokens |`);
    out.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const name of PATH_ORDER) {
      const row = pacedResults[name];
      if (!row) continue;
      out.push(`| ${name} | ${errorText(row.errorKinds, row.errors)} | ${row.peakOpen} | ${f1(row.maxGapMs)} | ${f1(row.gapP99Ms)} | ${f2(row.ttftP50)} | ${f2(row.ttftP99)} | ${f1(row.cpuPer1kTokens)} |`);
    }
    out.push('');
    for (const name of PATH_ORDER) {
      const rss = pacedResults[name]?.rss;
      if (!rss) continue;
      const mib = (kib: number): string => (kib / 1024).toFixed(1);
      out.push(
        `- ${name} VmRSS: idle ${mib(rss.idleKiB)} MiB (${mib(rss.idleGcKiB)} MiB right after a full GC), peak ${mib(rss.peakKiB)} MiB (${f1(rss.perStreamKiB)} KiB per open stream), ${mib(rss.afterKiB)} MiB ${(rss.afterMs / 1000).toFixed(1)} s after the last stream closed, ${mib(rss.afterGcKiB)} MiB after a full GC.`,
      );
    }
    verdicts.push({ target: 'paced: errors', value: errorText(p.errorKinds, p.errors), met: p.errors === 0 });
    verdicts.push({ target: 'paced: streams open at once', value: `${p.peakOpen} of ${pacedStreams} (direct: ${d.peakOpen})`, met: p.peakOpen === pacedStreams });
    verdicts.push({ target: `paced: worst inter-token gap ≤ ${2 * pacedMs} ms`, value: `${f1(p.maxGapMs)} ms (direct: ${f1(d.maxGapMs)} ms)`, met: p.maxGapMs <= 2 * pacedMs });
    const rss = p.rss;
    if (rss) {
      verdicts.push({ target: 'paced: server memory per open stream ≤ 32 KiB', value: `${f1(rss.perStreamKiB)} KiB`, met: rss.perStreamKiB <= 32 });
      verdicts.push({
        target: 'paced: memory back to idle after close, after a full GC (within 10% of the growth, or 2 MiB)',
        value: `${f1((rss.afterGcKiB - rss.idleGcKiB) / 1024)} MiB above idle after GC (left alone: ${f1((rss.afterKiB - rss.idleKiB) / 1024)} MiB above idle after ${(rss.afterMs / 1000).toFixed(1)} s)`,
        met: backToIdle(rss.idleGcKiB, rss.peakKiB, rss.afterGcKiB),
      });
    }
  }

  out.push('');
  out.push('| target | measured | met |');
  out.push('| --- | --- | --- |');
  for (const verdict of verdicts) out.push(`| ${verdict.target} | ${verdict.value} | ${verdict.met === undefined ? '–' : verdict.met ? 'yes' : '**no**'} |`);
  if (seedMissing !== undefined) out.push(`\nseed path not measured: ${seedMissing}`);
  process.stdout.write(`${out.join('\n')}\n\n`);
  const options = { burstLevels, burstCounts, rounds, tokens, latencyLevels, latencyCounts, latencyRounds, latencyItl, latencyTokens, pacedStreams, pacedChunks, pacedMs, pacedRampMs, pacedFake, baselineCli: baselineCli ?? null };
  process.stdout.write(`${JSON.stringify({ bench: 'relay', machine: { ...info, loadAvg1mAtEnd: Number(loadavg()[0]?.toFixed(2)) }, options, burst, latency, paced: pacedResults, verdicts })}\n`);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`relay bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
