/**
 * Tool-call streaming on the relay: Parlance's CPU per 1,000 streamed tokens when an upstream streams a tool
 * call's arguments, against the same upstream streaming the same words as text, in one run.
 *
 *   npx tsc -p tsconfig.build.json && nice -n 10 npx tsx bench/relay-tools.ts [--tokens 256] [--streams 200] [--concurrency 4] [--rounds 5]
 *
 * One fake engine (bench/relay-tools-fake.mjs: each stream a burst of --tokens chunks, text deltas or, when
 * the request has tools, argument fragments of one call) and one Parlance (dist/src/cli.js, embedded engine
 * off, fronting it). Each round runs --streams streams of each kind at --concurrency, text then tools, and
 * reads Parlance's utime+stime from /proc around each; a figure is the median over rounds. The client counts
 * a token per chunk that carries text (`"content":"…"`) or argument text (`"arguments":"…"`, the call's
 * empty first one excepted). Prints a table and a JSON line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, startChild, waitReady, type Child } from './relay-procs.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const { values: flags } = parseArgs({
  options: {
    tokens: { type: 'string', default: '256' },
    streams: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '5' },
  },
});
const tokens = Number(flags.tokens);
const streams = Number(flags.streams);
const concurrency = Number(flags.concurrency);
const rounds = Number(flags.rounds);

type Kind = 'text' | 'tools';
const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
const tool = { type: 'function', function: { name: 'write_text', parameters: { type: 'object', properties: { text: { type: 'string' } } } } };

function bodyOf(kind: Kind): Buffer {
  const body: Record<string, unknown> = { model: 'fake', stream: true, messages: [{ role: 'user', content: 'go' }] };
  if (kind === 'tools') Object.assign(body, { tools: [tool], tool_choice: 'required' });
  return Buffer.from(JSON.stringify(body));
}

/** One stream to its end; resolves with the tokens counted, rejects on anything but a whole stream. */
function stream(port: number, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode ?? '?'}`));
        return;
      }
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        if (!text.endsWith('data: [DONE]\n\n')) reject(new Error(`no [DONE]: ${text.slice(-200)}`));
        else resolve((text.match(/"(content|arguments)":"[^"]/g) ?? []).length);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function round(port: number, parlance: Child, kind: Kind): Promise<{ cpuMs: number; tokens: number }> {
  const body = bodyOf(kind);
  let started = 0;
  let counted = 0;
  const before = parlance.cpuMs();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < streams) {
        started++;
        // Not `counted += await …`: that reads `counted` before the await and loses the other workers' counts.
        const n = await stream(port, body);
        counted += n;
      }
    }),
  );
  return { cpuMs: parlance.cpuMs() - before, tokens: counted };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'parlance-relay-tools-'));
  const children: Child[] = [];
  try {
    const fakePort = await freePort();
    const fake = startChild('fake', process.execPath, [join(repoRoot, 'bench/relay-tools-fake.mjs')], { ...process.env, PORT: String(fakePort), TOKENS: String(tokens) }, join(work, 'fake.log'));
    children.push(fake);
    await waitReady(fake, `http://127.0.0.1:${fakePort}/v1/models`);
    const port = await freePort();
    const args = [join(repoRoot, 'dist/src/cli.js'), 'serve', '--no-embedded', '--upstream', `fake=http://127.0.0.1:${fakePort}/v1`, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn', '--data-dir', join(work, 'data')];
    const parlance = startChild('parlance', process.execPath, args, { ...process.env, NODE_ENV: 'production' }, join(work, 'parlance.log'));
    children.push(parlance);
    await waitReady(parlance, `http://127.0.0.1:${port}/ready`);
    // Warm-up: JIT and connection pools, for both shapes.
    for (const kind of ['text', 'tools'] as const) for (let i = 0; i < 20; i++) await stream(port, bodyOf(kind));

    const per: Record<Kind, number[]> = { text: [], tools: [] };
    for (let r = 0; r < rounds; r++) {
      for (const kind of ['text', 'tools'] as const) {
        const { cpuMs, tokens: counted } = await round(port, parlance, kind);
        if (counted !== streams * tokens) throw new Error(`${kind}: counted ${counted} tokens, expected ${streams * tokens}`);
        per[kind].push((cpuMs / counted) * 1000);
      }
    }
    const text = median(per.text);
    const toolsCpu = median(per.tools);
    const ratio = toolsCpu / text;
    console.log(`relay CPU per 1k tokens (Parlance process, utime+stime), ${streams} streams × ${tokens} tokens at concurrency ${concurrency}, median of ${rounds} rounds`);
    console.log(`  text deltas          ${text.toFixed(1)} ms   (rounds: ${per.text.map((v) => v.toFixed(1)).join(', ')})`);
    console.log(`  tool-call arguments  ${toolsCpu.toFixed(1)} ms   (rounds: ${per.tools.map((v) => v.toFixed(1)).join(', ')})`);
    console.log(`  ratio tools/text     ${ratio.toFixed(3)}x   target ≤ 1.05x: ${ratio <= 1.05 ? 'met' : 'NOT met'}`);
    console.log(`  machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load average ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
    console.log(JSON.stringify({ bench: 'relay-tools', tokens, streams, concurrency, rounds, textMsPer1k: text, toolsMsPer1k: toolsCpu, ratio, loadavg: loadavg() }));
  } finally {
    agent.destroy();
    for (const child of children.reverse()) await child.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
