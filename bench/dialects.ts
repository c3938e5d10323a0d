/**
 * Dialect benchmark: the server's CPU per 1,000 streamed tokens through each dialect (Anthropic Messages,
 * Ollama chat and generate) against `/v1/chat/completions`, on the same engine (the scripted echo model, no
 * delay, so the figure is Parlance's own cost), same server, same run.
 *
 *   nice -n 10 npx tsx bench/dialects.ts [--rounds 5] [--streams 300] [--concurrency 8] [--tokens 64]
 *
 * One Parlance process (`node --import tsx src/cli.ts serve --no-embedded --scripted`, load shedding off: on a
 * shared machine the event loop lags past its threshold) serves every dialect.
 * Each round runs every dialect once, in an order rotated from round to round so drift hits all alike: a run
 * keeps --concurrency streams open back to back until --streams have been read to their end, each echoing
 * --tokens words. The figure is the server's utime+stime (/proc/PID/stat) over the run, per 1,000 tokens; the
 * ratio is a dialect's figure over /v1/chat/completions' in the same round, and the medians are reported.
 * Prints a table and one JSON line (the last).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, startChild, waitReady } from './relay-procs.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    streams: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '8' },
    tokens: { type: 'string', default: '64' },
  },
});
const rounds = Number(flags.rounds);
const streams = Number(flags.streams);
const concurrency = Number(flags.concurrency);
const tokens = Number(flags.tokens);
const model = 'parlance-scripted';
const words = Array.from({ length: tokens }, (_, i) => `w${i}`).join(' ');
const lastWord = `w${tokens - 1}`;

interface Dialect {
  readonly name: string;
  readonly path: string;
  readonly body: unknown;
}

const dialects: readonly Dialect[] = [
  { name: 'openai-chat', path: '/v1/chat/completions', body: { model, stream: true, messages: [{ role: 'user', content: words }] } },
  { name: 'anthropic', path: '/v1/messages', body: { model, stream: true, max_tokens: tokens * 2, messages: [{ role: 'user', content: words }] } },
  { name: 'ollama-chat', path: '/api/chat', body: { model, messages: [{ role: 'user', content: words }] } },
  { name: 'ollama-generate', path: '/api/generate', body: { model, prompt: words } },
];

async function oneStream(url: string, dialect: Dialect): Promise<void> {
  const response = await fetch(`${url}${dialect.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(dialect.body) });
  const text = await response.text();
  if (response.status !== 200 || !text.includes(lastWord)) throw new Error(`${dialect.name}: ${response.status} ${text.slice(0, 200)}`);
}

async function run(url: string, dialect: Dialect): Promise<void> {
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < streams) {
      started++;
      await oneStream(url, dialect);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

const dir = mkdtempSync(join(tmpdir(), 'parlance-bench-dialects-'));
const port = await freePort();
const server = startChild('parlance', process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli.ts'), 'serve', '--no-embedded', '--scripted', '--port', String(port), '--host', '127.0.0.1', '--data-dir', join(dir, 'data'), '--log-level', 'silent', '--max-event-loop-delay', '0'], { ...process.env }, join(dir, 'server.log'));
const url = `http://127.0.0.1:${port}`;
const loadBefore = loadavg();
try {
  await waitReady(server, `${url}/ready`, 60_000);
  for (const dialect of dialects) await run(url, { ...dialect }); // warm-up: JIT, connection pool
  const perRound = new Map<string, number[]>(dialects.map((d) => [d.name, []]));
  const ratios = new Map<string, number[]>(dialects.map((d) => [d.name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = dialects.map((_, i) => dialects[(i + round) % dialects.length] as Dialect);
    const figures = new Map<string, number>();
    for (const dialect of order) {
      const before = server.cpuMs();
      await run(url, dialect);
      figures.set(dialect.name, (server.cpuMs() - before) / ((streams * tokens) / 1000));
    }
    const base = figures.get('openai-chat') ?? Number.NaN;
    for (const [name, figure] of figures) {
      perRound.get(name)?.push(figure);
      ratios.get(name)?.push(figure / base);
    }
    console.error(`round ${round + 1}: ${[...figures].map(([name, figure]) => `${name} ${figure.toFixed(2)}`).join(', ')} (ms CPU / 1k tokens)`);
  }
  const loadAfter = loadavg();
  console.log(`\n${streams} streams × ${tokens} tokens per run, ${concurrency} at a time, ${rounds} rounds; load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}\n`);
  console.log('| dialect | CPU ms / 1k tokens (median) | ratio to /v1/chat/completions (median of rounds) | target |');
  console.log('| --- | --- | --- | --- |');
  const result: Record<string, { cpuMsPer1k: number; ratio: number }> = {};
  for (const dialect of dialects) {
    const cpu = median(perRound.get(dialect.name) ?? []);
    const ratio = median(ratios.get(dialect.name) ?? []);
    result[dialect.name] = { cpuMsPer1k: cpu, ratio };
    const target = dialect.name === 'openai-chat' ? 'baseline' : ratio <= 1.1 ? 'met (≤ 1.10x)' : 'missed (> 1.10x)';
    console.log(`| ${dialect.name} (${dialect.path}) | ${cpu.toFixed(2)} | ${ratio.toFixed(3)}x | ${target} |`);
  }
  console.log(JSON.stringify({ bench: 'dialects', streams, tokens, concurrency, rounds, loadBefore, loadAfter, result }));
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
