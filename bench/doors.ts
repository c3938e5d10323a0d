/**
 * The Responses API and embeddings against their baselines, in one run on one machine.
 *
 * 1. Streaming CPU: the server (`src/cli.ts serve --no-embedded --scripted`, a child process) streams
 *    the scripted model's echo of a 1,000-word prompt (a token every `--delay` ms, so each goes out on its own), once as `/v1/chat/completions` and once as
 *    `/v1/responses`, rounds alternating ABAB; server CPU (utime+stime from /proc) per 1,000 tokens the
 *    client received. Same engine, same tokens: the difference is the dialect's serialisation.
 * 2. Embeddings: inputs per second through `POST /v1/embeddings` (a child server on the tiny GGUF,
 *    batches of `--batch` texts, one request at a time) against node-llama-cpp's embedding context called
 *    directly in this process on the same model and texts, rounds alternating.
 *
 *   npx tsx bench/doors.ts [--rounds 6] [--streams 16] [--requests 48] [--delay 1] [--batch 64] [--embed-requests 40]
 *
 * Run it niced on a shared machine (`nice -n 10 npx tsx bench/doors.ts`); it prints the load average.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama } from 'node-llama-cpp';
import { ensureTinyModel } from '../src/engines/llama-cpp/tiny-model.js';
import { freePort } from './relay-procs.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const rounds = flag('rounds', 6);
const streams = flag('streams', 16);
const requests = flag('requests', 48);
const batch = flag('batch', 64);
const embedRequests = flag('embed-requests', 40);
const delayMs = flag('delay', 1);
const TICK_MS = 10;

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

async function startServer(extra: readonly string[], dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PARLANCE_')) env[key] = value;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn', ...extra], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    const ready = await fetch(`${url}/ready`).then((r) => r.status === 200, () => false);
    if (ready) return { url, child };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the server did not become ready');
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

const prompt = Array.from({ length: 1000 }, (_, i) => `w${i % 97}`).join(' ');

/** Streams `requests` replies, `streams` at a time; returns the tokens (deltas) received. */
async function streamRound(url: string, door: 'chat' | 'responses'): Promise<number> {
  const path = door === 'chat' ? '/v1/chat/completions' : '/v1/responses';
  const body =
    door === 'chat'
      ? JSON.stringify({ model: 'parlance-scripted', messages: [{ role: 'user', content: prompt }], stream: true })
      : JSON.stringify({ model: 'parlance-scripted', input: prompt, stream: true, store: false });
  const marker = door === 'chat' ? '"content":"' : 'response.output_text.delta\ndata';
  let tokens = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests) {
      next++;
      const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const text = await response.text();
      tokens += text.split(marker).length - 1;
    }
  };
  await Promise.all(Array.from({ length: streams }, worker));
  return tokens;
}

async function streamingCpu(dataDir: string): Promise<void> {
  const { url, child } = await startServer(['--no-embedded', '--scripted', '--scripted-delay', String(delayMs)], dataDir);
  const pid = child.pid ?? 0;
  const perK: Record<'chat' | 'responses', number[]> = { chat: [], responses: [] };
  try {
    await streamRound(url, 'chat');
    await streamRound(url, 'responses');
    for (let round = 0; round < rounds; round++) {
      for (const door of round % 2 === 0 ? (['chat', 'responses'] as const) : (['responses', 'chat'] as const)) {
        const before = cpuMs(pid);
        const tokens = await streamRound(url, door);
        perK[door].push(((cpuMs(pid) - before) / tokens) * 1000);
      }
    }
  } finally {
    child.kill('SIGTERM');
  }
  const chat = median(perK.chat);
  const responses = median(perK.responses);
  console.log(`streaming: server CPU ms per 1k tokens, medians of ${rounds} rounds × ${requests} replies of 1,000 tokens (c=${streams}, a token every ${delayMs} ms)`);
  console.log(`  /v1/chat/completions ${chat.toFixed(1)}   runs: ${perK.chat.map((v) => v.toFixed(1)).join(' ')}`);
  console.log(`  /v1/responses        ${responses.toFixed(1)}   runs: ${perK.responses.map((v) => v.toFixed(1)).join(' ')}`);
  console.log(`  ratio responses/chat ${(responses / chat).toFixed(3)} (paired: ${perK.responses.map((v, i) => (v / (perK.chat[i] ?? v)).toFixed(2)).join(' ')})`);
}

async function embeddingsRate(dataDir: string): Promise<void> {
  const modelPath = await ensureTinyModel(join(dataDir, 'models', 'parlance-tiny.gguf'));
  const { url, child } = await startServer(['--model', modelPath, '--gpu', 'off', '--threads', '1', '--sequences', '1', '--context-size', '512'], dataDir);
  const llama = await getLlama({ gpu: false, build: 'never' });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createEmbeddingContext({ contextSize: 512, batchSize: 512, threads: 1 });
  const texts = Array.from({ length: batch }, (_, i) => `the quick brown fox ${i} jumps over the lazy dog number ${i * 7}`);
  const rates: Record<'http' | 'direct', number[]> = { http: [], direct: [] };
  /** CPU ms per 1,000 inputs: the server's (all threads) for HTTP, this process's for the binding. */
  const cpu: Record<'http' | 'direct', number[]> = { http: [], direct: [] };
  const serverPid = child.pid ?? 0;
  const http = async (): Promise<number> => {
    const started = performance.now();
    const cpuBefore = cpuMs(serverPid);
    for (let i = 0; i < embedRequests; i++) {
      const response = await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'parlance-tiny', input: texts, encoding_format: 'float' }) });
      const answer = (await response.json()) as { data: unknown[] };
      if (answer.data.length !== batch) throw new Error('short answer');
    }
    cpu.http.push(((cpuMs(serverPid) - cpuBefore) / (embedRequests * batch)) * 1000);
    return (embedRequests * batch) / ((performance.now() - started) / 1000);
  };
  const direct = async (): Promise<number> => {
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    for (let i = 0; i < embedRequests; i++) for (const text of texts) await context.getEmbeddingFor(text);
    const used = process.cpuUsage(cpuBefore);
    cpu.direct.push(((used.user + used.system) / 1000 / (embedRequests * batch)) * 1000);
    return (embedRequests * batch) / ((performance.now() - started) / 1000);
  };
  try {
    await http();
    await direct();
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        rates.http.push(await http());
        rates.direct.push(await direct());
      } else {
        rates.direct.push(await direct());
        rates.http.push(await http());
      }
    }
  } finally {
    child.kill('SIGTERM');
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
  const h = median(rates.http);
  const d = median(rates.direct);
  console.log(`embeddings: inputs/s, tiny model, batches of ${batch}, ${embedRequests} requests per round, medians of ${rounds} rounds`);
  console.log(`  HTTP /v1/embeddings ${h.toFixed(0)}   runs: ${rates.http.map((v) => v.toFixed(0)).join(' ')}`);
  console.log(`  binding directly    ${d.toFixed(0)}   runs: ${rates.direct.map((v) => v.toFixed(0)).join(' ')}`);
  console.log(`  ratio HTTP/direct   ${(h / d).toFixed(3)} (paired: ${rates.http.map((v, i) => (v / (rates.direct[i] ?? v)).toFixed(2)).join(' ')})`);
  // The warm-up rounds are left out of the CPU figures too.
  const cpuHttp = median(cpu.http.slice(1));
  const cpuDirect = median(cpu.direct.slice(1));
  console.log(`  CPU ms per 1k inputs: HTTP (server) ${cpuHttp.toFixed(0)}, binding ${cpuDirect.toFixed(0)}, ratio ${(cpuHttp / cpuDirect).toFixed(3)}`);
}

const dataDir = await mkdtemp(join(tmpdir(), 'parlance-bench-doors-'));
try {
  console.log(`load average before: ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  if (!args.includes('--skip-streaming')) await streamingCpu(dataDir);
  if (!args.includes('--skip-embeddings')) await embeddingsRate(dataDir);
  console.log(`load average after: ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
