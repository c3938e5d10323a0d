/**
 * Load held: many streams kept open for minutes against the scripted engine, to show that Parlance
 * serves them without errors and gives its memory and file descriptors back afterwards.
 *
 *   npx tsx bench/load-held.ts [--streams 500] [--duration 120] [--delay 20] [--words 100]
 *                              [--settle 180] [--runtime dist|tsx] [--node-flags=--optimize-for-size] [--no-build]
 *                              [--append BENCHMARKS.md] [--timeout 900]
 *
 * Parlance runs as a child process (compiled: `dist/src/cli.js`, built first with
 * `tsc -p tsconfig.build.json` unless --no-build; or `--runtime tsx` for the sources), serving only the
 * scripted echo model with `--scripted-delay` ms before each token. The client keeps `--streams`
 * OpenAI-style chat streams open at all times for `--duration` seconds: each asks for an echo of
 * `--words` words (so a stream lasts words × delay ms) and, as soon as it ends, the next one starts in
 * its place. Streams are opened 50 every 100 ms at first, so the ramp measures Parlance, not the
 * listen backlog.
 *
 * A stream counts as an error unless it answered 200, delivered every word in order, and ended with
 * `data: [DONE]`. Every second the child's resident memory (VmRSS, /proc/PID/status) and open file
 * descriptors (/proc/PID/fd) are sampled. Reported: both at the start (idle, after a warm-up), at the
 * peak, and after the streams closed (the client's connections closed too), waiting up to `--settle`
 * seconds for memory to come back within 10 % of the start; plus streams, tokens and the worst gap
 * between two tokens of any stream.
 *
 * Prints a table, then one JSON line (last). With --append FILE, adds the figures as a Markdown
 * section at the end of FILE (read again right before appending). The child is stopped at the end,
 * on error, on Ctrl-C and when --timeout seconds run out.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/fixtures/net.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

const { values: flags } = parseArgs({
  options: {
    streams: { type: 'string', default: '500' },
    duration: { type: 'string', default: '120' },
    delay: { type: 'string', default: '20' },
    words: { type: 'string', default: '100' },
    settle: { type: 'string', default: '180' },
    runtime: { type: 'string', default: 'dist' },
    'node-flags': { type: 'string', default: '' },
    'no-build': { type: 'boolean', default: false },
    append: { type: 'string' },
    timeout: { type: 'string', default: '900' },
  },
});

const streams = Number(flags.streams);
const durationS = Number(flags.duration);
const delayMs = Number(flags.delay);
const wordCount = Number(flags.words);
const settleS = Number(flags.settle);
const runtime = flags.runtime === 'tsx' ? 'tsx' : 'dist';
const nodeFlags = (flags['node-flags'] ?? '').split(' ').filter(Boolean);
for (const [name, value] of Object.entries({ streams, durationS, delayMs, wordCount, settleS })) {
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number >= 0`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resident memory of a process in bytes, from /proc. */
function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

/** CPU seconds (user + system, all threads) a process has used, from /proc. */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

function fdsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

const mib = (bytes: number): string => (bytes / (1 << 20)).toFixed(1);

// ---------------------------------------------------------------- the child

let child: ChildProcess | undefined;
const dataDir = mkdtempSync(join(tmpdir(), 'parlance-load-held-'));
function cleanUp(): void {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanUp();
  process.exit(130);
});
const overall = setTimeout(() => {
  process.stderr.write(`load-held: --timeout ${flags.timeout} s reached\n`);
  cleanUp();
  process.exit(1);
}, Number(flags.timeout) * 1000);
overall.unref();

async function startParlance(port: number): Promise<ChildProcess> {
  const args = ['serve', '--port', String(port), '--no-embedded', '--scripted', '--scripted-delay', String(delayMs), '--data-dir', dataDir, '--log-level', 'warn'];
  const command = [...nodeFlags, ...(runtime === 'dist' ? [join(repoRoot, 'dist/src/cli.js'), ...args] : ['--import', 'tsx', join(repoRoot, 'src/cli.ts'), ...args])];
  const started = spawn(process.execPath, command, { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  const deadline = Date.now() + 60_000;
  while (!(await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok, () => false))) {
    if (Date.now() > deadline || started.exitCode !== null) throw new Error('Parlance did not start');
    await sleep(100);
  }
  return started;
}

// ---------------------------------------------------------------- the client

interface StreamOutcome {
  readonly error: string | undefined;
  readonly tokens: number;
  readonly maxGapMs: number;
}

const CONTENT = '"content":"';
const words = Array.from({ length: wordCount }, (_, i) => `w${i}`);
const expected = words.map((word, i) => (i === 0 ? word : ` ${word}`));
const body = Buffer.from(JSON.stringify({ model: 'parlance-scripted', stream: true, messages: [{ role: 'user', content: words.join(' ') }] }));
const newAgent = (): http.Agent => new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 4096 });
let agent = newAgent();
let openStreams = 0;

/** One chat stream to its end; checks every word arrived in order and the stream ended with [DONE]. Never rejects. */
function oneStream(port: number): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    let tokens = 0;
    let last = 0;
    let maxGap = 0;
    let done = false;
    let failure: string | undefined;
    let settled = false;
    let counted = false;
    const finish = (error: string | undefined): void => {
      if (settled) return;
      settled = true;
      if (counted) openStreams--;
      let verdict = error ?? failure;
      if (verdict === undefined && tokens !== expected.length) verdict = `short stream (${tokens} of ${expected.length} words)`;
      if (verdict === undefined && !done) verdict = 'no [DONE]';
      resolve({ error: verdict, tokens, maxGapMs: maxGap });
    };
    const request = http.request(
      { host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
      (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          finish(`HTTP ${response.statusCode ?? '?'}`);
          return;
        }
        counted = true;
        openStreams++;
        response.setEncoding('utf8');
        let buffer = '';
        response.on('data', (chunk: string) => {
          buffer += chunk;
          let start = 0;
          for (let end = buffer.indexOf('\n\n', start); end >= 0; end = buffer.indexOf('\n\n', start)) {
            const event = buffer.slice(start, end);
            start = end + 2;
            if (!event.startsWith('data: ')) continue;
            // Cheap parsing (the client must not be the bottleneck): the echoed words need no JSON escapes.
            if (event === 'data: [DONE]') {
              done = true;
              continue;
            }
            if (event.startsWith('data: {"error"')) {
              failure ??= `error event: ${event.slice(6, 166)}`;
              continue;
            }
            const at = event.indexOf(CONTENT);
            if (at < 0) continue;
            const text = event.slice(at + CONTENT.length, event.indexOf('"', at + CONTENT.length));
            if (!text) continue;
            if (text !== expected[tokens]) failure ??= `word ${tokens} was ${JSON.stringify(text)}`;
            const now = performance.now();
            if (tokens > 0 && now - last > maxGap) maxGap = now - last;
            last = now;
            tokens++;
          }
          buffer = buffer.slice(start);
        });
        response.on('end', () => finish(undefined));
        response.on('error', (error) => finish(error.message));
        response.on('close', () => finish(response.complete ? undefined : 'connection closed mid-stream'));
      },
    );
    request.on('error', (error) => finish(error.message));
    request.end(body);
  });
}

// ---------------------------------------------------------------- the run

interface Sample {
  readonly atS: number;
  readonly rss: number;
  readonly fds: number;
  readonly open: number;
}

async function main(): Promise<void> {
  if (runtime === 'dist' && !flags['no-build']) {
    const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('the build failed');
  }
  if (runtime === 'dist' && !existsSync(join(repoRoot, 'dist/src/cli.js'))) throw new Error('dist/src/cli.js is missing: build first, or pass --runtime tsx');

  const port = await freePort();
  child = await startParlance(port);
  const pid = child.pid;
  if (pid === undefined) throw new Error('no child pid');

  // Warm-up: a few streams through every path (schemas compiled, pools made), then idle.
  await Promise.all(Array.from({ length: 20 }, () => oneStream(port)));
  agent.destroy();
  agent = newAgent();
  await sleep(3000);
  const start = { rss: rssOf(pid), fds: fdsOf(pid) };

  const samples: Sample[] = [];
  const cpuStart = cpuOf(pid);
  const t0 = performance.now();
  const sampler = setInterval(() => samples.push({ atS: (performance.now() - t0) / 1000, rss: rssOf(pid), fds: fdsOf(pid), open: openStreams }), 1000);
  // The server's own event-loop delay (prom-client's histogram, reset at each scrape), and this client's,
  // to tell where a long gap between tokens came from.
  let serverLagMaxMs = 0;
  let clientLagMaxMs = 0;
  const lagScraper = setInterval(() => {
    void fetch(`http://127.0.0.1:${port}/metrics`)
      .then((response) => response.text())
      .then((text) => {
        const lag = Number(/^parlance_process_nodejs_eventloop_lag_max_seconds (\S+)/m.exec(text)?.[1] ?? 0) * 1000;
        if (lag > serverLagMaxMs) serverLagMaxMs = lag;
      }, () => undefined);
  }, 5000);
  let tick = performance.now();
  const clientLag = setInterval(() => {
    const now = performance.now();
    if (now - tick - 50 > clientLagMaxMs) clientLagMaxMs = now - tick - 50;
    tick = now;
  }, 50);
  const outcomes: StreamOutcome[] = [];
  const endAt = t0 + durationS * 1000;
  const slots: Promise<void>[] = [];
  for (let i = 0; i < streams; i++) {
    slots.push(
      (async () => {
        while (performance.now() < endAt) outcomes.push(await oneStream(port));
      })(),
    );
    if (i % 50 === 49) await sleep(100);
  }
  await Promise.all(slots);
  const loadS = (performance.now() - t0) / 1000;
  const cpuS = cpuOf(pid) - cpuStart;
  clearInterval(sampler);
  clearInterval(lagScraper);
  clearInterval(clientLag);
  agent.destroy(); // the client's keep-alive connections close: the server's sockets must go too

  // After: wait (up to --settle s) for memory to come back within 10 % of the start and descriptors to the start.
  const closedAt = performance.now();
  let after = { rss: rssOf(pid), fds: fdsOf(pid) };
  while ((performance.now() - closedAt) / 1000 < settleS) {
    await sleep(1000);
    after = { rss: rssOf(pid), fds: fdsOf(pid) };
    if (after.rss <= start.rss * 1.1 && after.fds <= start.fds) break;
  }
  const settledS = (performance.now() - closedAt) / 1000;
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const activeStreams = Number(/^parlance_active_streams (\d+)/m.exec(metrics)?.[1] ?? -1);
  const busy = Number(/^parlance_engine_busy\{engine="scripted"\} (\d+)/m.exec(metrics)?.[1] ?? -1);

  const peak = { rss: Math.max(start.rss, ...samples.map((s) => s.rss)), fds: Math.max(start.fds, ...samples.map((s) => s.fds)) };
  const heldOpen = samples.filter((s) => s.atS >= 5 && s.atS <= durationS - 1).map((s) => s.open);
  const errors: Record<string, number> = {};
  for (const outcome of outcomes) if (outcome.error !== undefined) errors[outcome.error] = (errors[outcome.error] ?? 0) + 1;
  const errorCount = Object.values(errors).reduce((sum, n) => sum + n, 0);
  const tokens = outcomes.reduce((sum, outcome) => sum + outcome.tokens, 0);
  const gaps = outcomes.map((outcome) => outcome.maxGapMs).sort((a, b) => a - b);
  const gapP99 = gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * 0.99))] ?? 0;
  const rssBack = after.rss <= start.rss * 1.1;
  const fdsBack = after.fds <= start.fds;

  const result = {
    bench: 'load-held',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', memoryGiB: Math.round(totalmem() / (1 << 30)), node: process.version },
    config: { streams, durationS, delayMs, words: wordCount, runtime, nodeFlags },
    streamsRun: outcomes.length,
    tokens,
    tokensPerSecond: Math.round(tokens / loadS),
    serverCpu: { seconds: Number(cpuS.toFixed(1)), coreShare: Number((cpuS / loadS).toFixed(2)), msPer1000Tokens: Number(((cpuS * 1000 * 1000) / Math.max(1, tokens)).toFixed(1)) },
    openHeld: { min: Math.min(...heldOpen), max: Math.max(...heldOpen) },
    errors: errorCount,
    errorKinds: errors,
    worstGapMs: { p99: Math.round(gapP99), max: Math.round(gaps.at(-1) ?? 0) },
    eventLoopDelayMaxMs: { server: Math.round(serverLagMaxMs), client: Math.round(clientLagMaxMs) },
    rssMiB: { start: Number(mib(start.rss)), peak: Number(mib(peak.rss)), after: Number(mib(after.rss)), afterVsStartPct: Number(((after.rss / start.rss - 1) * 100).toFixed(1)) },
    fds: { start: start.fds, peak: peak.fds, after: after.fds },
    settledS: Number(settledS.toFixed(1)),
    serverAfter: { activeStreams, busy },
    verdict: { noErrors: errorCount === 0, memoryBack: rssBack, fdsBack, streamsClosed: activeStreams === 0 && busy === 0 },
  };

  const rows: [string, string][] = [
    ['streams held open', `${streams} (measured ${result.openHeld.min}–${result.openHeld.max} open between 5 s and the end)`],
    ['duration', `${loadS.toFixed(0)} s, scripted delay ${delayMs} ms × ${wordCount} words per stream`],
    ['streams run / tokens', `${outcomes.length} / ${tokens} (${result.tokensPerSecond} tokens/s)`],
    ['errors', errorCount === 0 ? '0' : `${errorCount}: ${JSON.stringify(errors)}`],
    ['server CPU', `${cpuS.toFixed(1)} s over ${loadS.toFixed(0)} s (${(cpuS / loadS * 100).toFixed(0)} % of a core), ${result.serverCpu.msPer1000Tokens} ms per 1,000 tokens`],
    ['worst gap between tokens', `p99 ${result.worstGapMs.p99} ms, max ${result.worstGapMs.max} ms (nominal ${delayMs} ms)`],
    ['longest event-loop stall', `server ${result.eventLoopDelayMaxMs.server} ms, load client ${result.eventLoopDelayMaxMs.client} ms (same ${cpus().length}-core machine)`],
    ['RSS start / peak / after', `${mib(start.rss)} / ${mib(peak.rss)} / ${mib(after.rss)} MiB (after = ${result.rssMiB.afterVsStartPct >= 0 ? '+' : ''}${result.rssMiB.afterVsStartPct} % of start, ${settledS.toFixed(0)} s after close)`],
    ['open fds start / peak / after', `${start.fds} / ${peak.fds} / ${after.fds}`],
    ['server after', `${activeStreams} open streams, ${busy} generations running`],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  process.stdout.write(`\nLoad held: ${streams} streams for ${durationS} s against the scripted engine (${runtime}${nodeFlags.length ? ` with node ${nodeFlags.join(' ')}` : ''})\n`);
  for (const [name, value] of rows) process.stdout.write(`  ${name.padEnd(width)}  ${value}\n`);
  process.stdout.write(`  verdict: ${Object.entries(result.verdict).map(([name, ok]) => `${name} ${ok ? 'yes' : 'NO'}`).join(', ')}\n\n`);

  if (flags.append !== undefined) {
    const path = join(repoRoot, flags.append);
    const command = `npx tsx bench/load-held.ts --streams ${streams} --duration ${durationS} --delay ${delayMs} --words ${wordCount}${runtime === 'tsx' ? ' --runtime tsx' : ''}${nodeFlags.length ? ` --node-flags="${nodeFlags.join(' ')}"` : ''}`;
    const section = [
      '',
      '## Load held (bench/load-held)',
      '',
      `${streams} OpenAI-style chat streams held open for ${durationS} s against the scripted engine (${delayMs} ms before each`,
      `token, ${wordCount} words a stream, each replaced by a new one as it ends), Parlance compiled (\`dist/\`) in a child`,
      'process; its memory (VmRSS) and open file descriptors read from /proc. A stream is an error unless it',
      'answered 200 and delivered every word, in order, then `[DONE]`.',
      '',
      '```sh',
      command,
      '```',
      '',
      `Run ${result.date.slice(0, 10)} on ${result.machine.cpus} × ${result.machine.cpu}, ${result.machine.memoryGiB} GiB, Node ${result.machine.node}.`,
      '',
      '| | |',
      '| --- | --- |',
      ...rows.map(([name, value]) => `| ${name} | ${value} |`),
      '',
      `Verdict: ${errorCount === 0 ? 'no errors' : `${errorCount} errors`}; memory ${rssBack ? 'back within 10 % of its start' : 'NOT back within 10 %'} after the streams closed; open descriptors ${fdsBack ? 'back to their start (no growth)' : 'NOT back to their start'}.`,
      '',
    ].join('\n');
    // Others append sections too: read the file as it is now, right before adding to its end.
    const current = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
    if (!existsSync(path)) writeFileSync(path, current);
    appendFileSync(path, `${current.endsWith('\n') ? '' : '\n'}${section}`);
    process.stdout.write(`appended to ${flags.append}\n`);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

try {
  await main();
} finally {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await Promise.race([new Promise((resolve) => child?.once('exit', resolve)), sleep(10_000)]);
  }
  cleanUp();
}
