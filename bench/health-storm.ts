/**
 * Health under a storm of huge prompts: does a flood of 1 MB chat requests delay a trivial request?
 *
 *   npx tsx bench/health-storm.ts [--clients 6] [--prompt-bytes 1000000] [--seconds 15] [--probe-ms 20]
 *                                 [--model tiny|scripted] [--no-build] [--node-flags='--cpu-prof …']
 *
 * Parlance runs as a child process from the build (`dist/src/cli.js`, built first unless --no-build) with the
 * tiny GGUF (or the scripted engine). `--clients` loops each send a `--prompt-bytes` prompt to
 * `/v1/chat/completions` as fast as the server answers (every one is refused: it cannot fit the model's
 * context), while a prober asks `/health` every `--probe-ms` ms. The same prober runs first for the same time
 * with no storm, so the two rows compare in one run. Reported: /health p50, p99 and max, the storm's requests
 * per second and their status codes. The client runs in this process; on a 2-core machine it competes with the
 * server for CPU, which is part of what a real storm does.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/fixtures/net.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from './lib/measure.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const { values: flags } = parseArgs({
  options: {
    clients: { type: 'string', default: '6' },
    'prompt-bytes': { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '15' },
    'probe-ms': { type: 'string', default: '20' },
    model: { type: 'string', default: 'tiny' },
    'no-build': { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
    // Internal: the storm runs in its own process, so that its work does not delay the prober's own loop.
    'storm-at': { type: 'string' },
  },
});
const clients = Number(flags.clients);
const promptBytes = Number(flags['prompt-bytes']);
const seconds = Number(flags.seconds);
const probeMs = Number(flags['probe-ms']);

if (flags['storm-at'] !== undefined) await runStorm(flags['storm-at'], String(flags.model));

if (!flags['no-build']) spawnSync('node', ['scripts/ensure-built.mjs', 'server'], { cwd: repoRoot, stdio: 'inherit' });

const port = await freePort();
const modelArgs = flags.model === 'scripted' ? ['--no-embedded', '--scripted'] : ['--model', '.cache/models/parlance-tiny.gguf'];
const child = spawn('node', [...String(flags['node-flags']).split(' ').filter(Boolean), 'dist/src/cli.js', 'serve', '--port', String(port), ...modelArgs], {
  cwd: repoRoot,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, PARLANCE_LOG_LEVEL: 'warn', PARLANCE_DATA_DIR: mkdtempSync(join(tmpdir(), 'parlance-storm-')) },
});
const base = `http://127.0.0.1:${port}`;
process.on('exit', () => child.kill('SIGKILL'));

for (let waited = 0; ; waited += 100) {
  const ready = await fetch(`${base}/ready`).then((r) => r.ok, () => false);
  if (ready) break;
  if (waited > 60_000) throw new Error('the server did not get ready in 60 s');
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] };
const model = models.data[0]?.id ?? 'unknown';

async function probe(ms: number): Promise<number[]> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const started = performance.now();
    const response = await fetch(`${base}/health`);
    await response.arrayBuffer();
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, probeMs));
  }
  return latencies;
}

function row(name: string, latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  return `${name.padEnd(10)} n=${String(sorted.length).padStart(4)}  p50 ${percentile(sorted, 50).toFixed(1).padStart(7)} ms  p99 ${percentile(sorted, 99).toFixed(1).padStart(7)} ms  max ${(sorted.at(-1) ?? 0).toFixed(1).padStart(7)} ms`;
}

await probe(1000);
const idle = await probe(seconds * 1000);

const stormChild = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--storm-at', base, '--model', model, '--clients', String(clients), '--prompt-bytes', String(promptBytes)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
process.on('exit', () => stormChild.kill('SIGKILL'));
let stormReport = '';
stormChild.stdout.on('data', (chunk: Buffer) => (stormReport += chunk.toString()));
await new Promise((resolve) => setTimeout(resolve, 1500));
const loaded = await probe(seconds * 1000);
stormChild.kill('SIGTERM');
await new Promise((resolve) => stormChild.once('exit', resolve));
const { sent, statuses, elapsedS } = JSON.parse(stormReport) as { sent: number; statuses: Record<string, number>; elapsedS: number };

console.log(`health under a storm of ${clients} clients × ${(promptBytes / 1e6).toFixed(2)} MB prompts, model ${model}, ${seconds} s each`);
console.log(row('idle', idle));
console.log(row('storm', loaded));
console.log(`storm: ${(sent / elapsedS).toFixed(1)} requests/s, statuses ${JSON.stringify(statuses)}`);
console.log(JSON.stringify({ idle: summary(idle), storm: summary(loaded), stormRps: sent / elapsedS, statuses }));
child.kill('SIGTERM');

function summary(latencies: number[]) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 };
}

/** The storm's own process: `clients` loops posting the huge prompt until SIGTERM, then one JSON line of counts. */
async function runStorm(base: string, model: string): Promise<never> {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'x '.repeat(promptBytes / 2) }] });
  const statuses: Record<string, number> = {};
  const started = performance.now();
  let sent = 0;
  let running = true;
  process.once('SIGTERM', () => (running = false));
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (running) {
        const response = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).catch(() => null);
        const key = String(response?.status ?? 'network-error');
        statuses[key] = (statuses[key] ?? 0) + 1;
        await response?.arrayBuffer().catch(() => undefined);
        sent += 1;
      }
    }),
  );
  console.log(JSON.stringify({ sent, statuses, elapsedS: (performance.now() - started) / 1000 }));
  process.exit(0);
}
