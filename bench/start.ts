/**
 * Start to `/ready` with the demo model: `npm start` (a second start: the build is current) against the built
 * CLI run directly, interleaved in the same run (the order alternates each round), medians reported.
 * Also the built CLI with `--otlp-endpoint` (tracing on, to a port nobody listens on), with the server's RSS at
 * `/ready`, to show what loading the OpenTelemetry SDK costs when it is asked for; and, with `--before
 * <cli.js>`, another build of the CLI (e.g. main's, built in a scratch folder) as the before figure.
 *
 *   npx tsx bench/start.ts [--rounds 10] [--before /tmp/main/dist/src/cli.js]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureBuilt, targets } from '../scripts/ensure-built.mjs';
import { freePort } from '../test/fixtures/net.js';
import { repoRoot } from '../test/fixtures/cli.js';
import { median, processMemoryMb } from './lib/measure.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' }, before: { type: 'string' } } });
const rounds = Number(values.rounds);

interface Variant {
  readonly name: string;
  /** The command, given the serve flags. */
  readonly command: (flags: readonly string[]) => readonly string[];
  /** Whether the spawned process is the server itself (its RSS can be read). */
  readonly direct: boolean;
}

const refusedPort = await freePort();
const variants: Variant[] = [
  { name: 'npm start', command: (flags) => ['npm', 'start', '--', ...flags], direct: false },
  { name: 'built CLI', command: (flags) => [process.execPath, targets.server.output, 'serve', ...flags], direct: true },
  { name: 'built CLI, --otlp-endpoint', command: (flags) => [process.execPath, targets.server.output, 'serve', ...flags, '--otlp-endpoint', `http://127.0.0.1:${refusedPort}`], direct: true },
  ...(values.before ? [{ name: 'before: built CLI', command: (flags: readonly string[]) => [process.execPath, values.before ?? '', 'serve', ...flags], direct: true }] : []),
];

/** Spawns the variant in its own process group and times it from spawn to the first 200 from `/ready`. */
async function timeToReady(variant: Variant, dirs: { data: string; models: string }): Promise<{ ms: number; rssMb: number | undefined }> {
  const port = await freePort();
  const [file, ...args] = variant.command(['--demo', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dirs.data, '--models-dir', dirs.models]);
  const startedAt = performance.now();
  const child = spawn(file ?? '', args, { cwd: repoRoot, detached: true, stdio: 'ignore' });
  try {
    const deadline = startedAt + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${variant.name} exited with ${child.exitCode}`);
      if (performance.now() > deadline) throw new Error(`${variant.name}: no /ready within 120 s`);
      const ready = await fetch(`http://127.0.0.1:${port}/ready`).then((response) => response.status === 200, () => false);
      if (ready) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const ms = performance.now() - startedAt;
    const rssMb = variant.direct && child.pid !== undefined ? (await processMemoryMb(child.pid)).rssMb : undefined;
    return { ms, rssMb };
  } finally {
    await stop(child);
  }
}

/** Stops the variant's whole process group (npm, its shell and the server) and waits until none of it is left. */
async function stop(child: ChildProcess): Promise<void> {
  const group = child.pid;
  if (group === undefined) return;
  const alive = (): boolean => {
    try {
      process.kill(-group, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(-group, 'SIGTERM');
  // npm exits at once on SIGTERM while its server is still shutting down: the next start must not overlap it.
  // Bounded: a zombie nobody reaps (no init in a container) still answers signal 0.
  const killAt = performance.now() + 15_000;
  while (alive() && performance.now() < killAt + 2000) {
    if (performance.now() > killAt) process.kill(-group, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const dir = await mkdtemp(join(tmpdir(), 'parlance-bench-start-'));
const dirs = { data: join(dir, 'data'), models: join(dir, 'models') };
try {
  await ensureBuilt('server');
  await ensureBuilt('web');
  // The first start writes the demo model and creates the store: a first start, not measured.
  for (const variant of variants) await timeToReady(variant, dirs);
  const times = new Map<string, number[]>(variants.map((variant) => [variant.name, []]));
  const memory = new Map<string, number[]>(variants.map((variant) => [variant.name, []]));
  const loads: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    const line: string[] = [];
    for (const variant of order) {
      const { ms, rssMb } = await timeToReady(variant, dirs);
      times.get(variant.name)?.push(ms);
      if (rssMb !== undefined) memory.get(variant.name)?.push(rssMb);
      line.push(`${variant.name} ${Math.round(ms)} ms`);
    }
    loads.push(loadavg()[0] ?? Number.NaN);
    console.log(`round ${round + 1}: ${line.join(', ')} (load ${loadavg()[0]?.toFixed(1)})`);
  }
  const base = median(times.get('built CLI') ?? []);
  console.log(`\n${rounds} rounds, load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`);
  console.log('| variant | start to /ready, median ms | min–max ms | × built CLI | RSS at /ready, median MB |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const variant of variants) {
    const list = times.get(variant.name) ?? [];
    const rss = memory.get(variant.name) ?? [];
    console.log(`| ${variant.name} | ${Math.round(median(list))} | ${Math.round(Math.min(...list))}–${Math.round(Math.max(...list))} | ${(median(list) / base).toFixed(2)} | ${rss.length > 0 ? median(rss).toFixed(1) : '–'} |`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
