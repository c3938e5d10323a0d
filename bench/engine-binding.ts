/**
 * node-llama-cpp (the binding, in this process, as the embedded engine drives it) against llama-server on the
 * same GGUF, paired and alternated, for the two places the embedded engine loses: prefill, and steps that
 * decode several sequences at once. CPU time is compared as well as wall time, so a shared machine's load
 * skews both sides alike. See docs/decisions/embedded-engine.md "Round 3".
 *
 *   npx tsx bench/engine-binding.ts prefill [--tokens 557|72] [--runs 4] [--batch 512] [--flash-attention auto|on|off]
 *   npx tsx bench/engine-binding.ts streams [--streams 4] [--tokens 64] [--runs 4]
 *   common: [--model .cache/models/parlance-bench.gguf] [--threads 1] [--llama-server PATH]
 *
 * prefill: the templated token ids of a ~95-word prompt (cut to --tokens), evaluated by
 *   `LlamaContextSequence.evaluate` up to the first sampled token, against llama-server's `/completion` with the
 *   same ids (`cache_prompt: false`, 1 token); CPU from process.cpuUsage() and /proc/PID/stat.
 * streams: `LlamaCppEngine` (Parlance's engine, in-process) with --streams chats at once, against as many
 *   /v1/chat/completions on llama-server; aggregate tok/s, and what reached llama.cpp through the binding
 *   (tokens per decode, batches whose sequence ids are not consecutive: llama.cpp splits those).
 * Which node-llama-cpp and which ggml CPU variant run is whatever node_modules holds: the line printed first says.
 * llama-server is started here (built by bench/peers/build-llama-server.sh) and stopped at the end.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getLlama, LlamaChat, type Token } from 'node-llama-cpp';
import { LlamaCppEngine } from '../src/engines/llama-cpp/engine.js';
import { freePort } from '../test/fixtures/net.js';
import { median, processCpuMs } from './lib/measure.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string', default: join(repoRoot, '.cache/models/parlance-bench.gguf') },
    threads: { type: 'string', default: '1' },
    tokens: { type: 'string' },
    runs: { type: 'string', default: '4' },
    batch: { type: 'string', default: '512' },
    'flash-attention': { type: 'string', default: 'auto' },
    streams: { type: 'string', default: '4' },
    'llama-server': { type: 'string', default: join(repoRoot, '.cache/peers/llama.cpp/build/bin/llama-server') },
  },
});
const mode = positionals[0] ?? 'prefill';
if (mode !== 'prefill' && mode !== 'streams') throw new Error(`the case is prefill or streams, got ${mode}`);
const threads = Number(flags.threads);
const runs = Number(flags.runs);
const modelPath = flags.model;
const sequences = 4;
const contextSize = 2048;

const port = await freePort();
const server = spawn(flags['llama-server'], ['-m', modelPath, '--host', '127.0.0.1', '--port', String(port), '-t', String(threads), '-tb', String(threads), '-np', String(sequences), '-c', String(contextSize * sequences), '-b', '512', '-ub', '512', '-ngl', '0', '--no-webui'], { stdio: 'ignore' });
const stopServer = (): void => void server.kill('SIGTERM');
process.on('exit', stopServer);
const peerPid = server.pid ?? 0;
for (let i = 0; ; i++) {
  if (await fetch(`http://127.0.0.1:${port}/health`).then((response) => response.ok, () => false)) break;
  if (i > 1200) throw new Error('llama-server did not start');
  await new Promise((resolve) => setTimeout(resolve, 50));
}
/** The ggml CPU variant this process loaded (node-llama-cpp picks one at run time). */
const cpuVariant = (): string => [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\n').filter((line) => line.includes('libggml-cpu')).map((line) => line.split(/\s+/).pop()))].join(', ');
const ownCpuMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};
/** The binding's figure and llama-server's, the one that goes first alternating with the run. */
async function paired<T>(run: number, binding: () => Promise<T>, peer: () => Promise<T>): Promise<[T, T]> {
  if (run % 2) {
    const a = await binding();
    return [a, await peer()];
  }
  const b = await peer();
  return [await binding(), b];
}
const vocabulary = ['river', 'stone', 'lantern', 'market', 'winter', 'garden', 'harbor', 'letter', 'mountain', 'window', 'engine', 'meadow', 'signal', 'bridge', 'orchard', 'candle'];
const words = (count: number, salt: number): string => Array.from({ length: count }, (_, i) => vocabulary[(i * 7 + salt * 13 + ((i * salt) % 5)) % vocabulary.length]).join(' ');

if (mode === 'prefill') {
  const llama = await getLlama({ gpu: false, build: 'never' });
  const fa = flags['flash-attention'];
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize, sequences, threads, batchSize: Number(flags.batch), flashAttention: fa === 'auto' ? 'auto' : fa === 'on' });
  console.log(`binding: ${cpuVariant()} (batch ${context.batchSize}, flash attention ${String(context.flashAttention)})`);
  const sequence = context.getSequence();
  const wrapper = new LlamaChat({ contextSequence: sequence }).chatWrapper;
  const { contextText } = wrapper.generateContextState({ chatHistory: [{ type: 'system', text: 'Run 1. Summarise what follows.' }, { type: 'user', text: words(95, 1) }, { type: 'model', response: [] }] });
  const tokens: Token[] = contextText.tokenize(model.tokenizer).slice(0, flags.tokens === undefined ? undefined : Number(flags.tokens));
  const ratios: number[] = [];
  for (let run = 0; run <= runs; run++) {
    const binding = async (): Promise<[number, number]> => {
      await sequence.clearHistory();
      const cpu = ownCpuMs();
      const started = performance.now();
      for await (const token of sequence.evaluate(tokens, { temperature: 0.8 })) if (token !== undefined) break;
      return [ownCpuMs() - cpu, performance.now() - started];
    };
    const peer = async (): Promise<[number, number]> => {
      const cpu = await processCpuMs(peerPid);
      const started = performance.now();
      const response = await fetch(`http://127.0.0.1:${port}/completion`, { method: 'POST', body: JSON.stringify({ prompt: tokens, n_predict: 1, cache_prompt: false, temperature: 0.8 }) });
      await response.json();
      return [(await processCpuMs(peerPid)) - cpu, performance.now() - started];
    };
    const [a, b] = await paired(run, binding, peer);
    if (run === 0) continue; // warm-up
    ratios.push(a[0] / b[0]);
    console.log(`run ${run}: ${tokens.length} tokens; binding CPU ${a[0].toFixed(0)} ms (wall ${a[1].toFixed(0)}), llama-server CPU ${b[0].toFixed(0)} ms (wall ${b[1].toFixed(0)}): CPU ratio ${(a[0] / b[0]).toFixed(2)}`);
  }
  console.log(`median CPU ratio ${median(ratios).toFixed(2)}`);
} else {
  const streams = Number(flags.streams);
  const tokens = Number(flags.tokens ?? 64);
  const engine = await LlamaCppEngine.create({ modelPath, modelId: 'bench', gpu: 'off', threads, sequences, contextSize, defaultMaxTokens: tokens, queueLength: 8 });
  console.log(`binding: ${cpuVariant()}`);
  // What reaches llama.cpp: the engine's context's native batch calls, counted through a proxy (bench only).
  const holder = Reflect.get(engine, 'context') as object;
  const native = Reflect.get(holder, '_ctx') as object;
  let decodes = 0;
  let batchTokens = 0;
  let outOfOrder = 0;
  let ids: number[] = [];
  Reflect.set(holder, '_ctx', new Proxy(native, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      if (key === 'addToBatch') {
        return (sequenceId: number, first: number, batch: Uint32Array, logits: Uint32Array): unknown => {
          ids.push(sequenceId);
          batchTokens += batch.length;
          return Reflect.apply(value, target, [sequenceId, first, batch, logits]);
        };
      }
      if (key === 'decodeBatch') {
        return (): unknown => {
          decodes++;
          if (ids.some((id, i) => i > 0 && id !== (ids[i - 1] ?? 0) + 1)) outOfOrder++;
          ids = [];
          return Reflect.apply(value, target, []);
        };
      }
      return (...args: unknown[]): unknown => Reflect.apply(value, target, args);
    },
  }));
  const messages = (run: number, stream: number): { role: 'system' | 'user'; content: string }[] => [
    { role: 'system', content: `Run ${run}.${stream}. You are a helpful assistant. Answer in full sentences.` },
    { role: 'user', content: 'Tell me a long story about a cat, a dog and the time they spent together in the city.' },
  ];
  const viaEngine = async (run: number): Promise<number> => {
    const started = performance.now();
    const counts = await Promise.all(Array.from({ length: streams }, async (_, stream) => {
      const generation = await engine.open({ model: 'bench', input: { kind: 'chat', messages: messages(run, stream) }, sampling: { temperature: 0.8, topP: 0.95, maxTokens: tokens, seed: 42 + stream } }, new AbortController().signal);
      let count = 0;
      for await (const event of generation) if (event.type === 'usage') count = event.usage.completionTokens;
      return count;
    }));
    return (counts.reduce((sum, count) => sum + count, 0) * 1000) / (performance.now() - started);
  };
  const viaPeer = async (run: number): Promise<number> => {
    const started = performance.now();
    const counts = await Promise.all(Array.from({ length: streams }, async (_, stream) => {
      const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: messages(run, stream), max_tokens: tokens, temperature: 0.8, top_p: 0.95, seed: 42 + stream }) });
      return ((await response.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;
    }));
    return (counts.reduce((sum, count) => sum + count, 0) * 1000) / (performance.now() - started);
  };
  await viaEngine(0);
  await viaPeer(0);
  decodes = batchTokens = outOfOrder = 0;
  const ratios: number[] = [];
  for (let run = 1; run <= runs; run++) {
    const [a, b] = await paired(run, () => viaEngine(run), () => viaPeer(run));
    ratios.push(a / b);
    console.log(`run ${run}: engine ${a.toFixed(1)} tok/s, llama-server ${b.toFixed(1)} tok/s: ${(a / b).toFixed(2)}`);
  }
  console.log(`median ratio ${median(ratios).toFixed(2)}; ${decodes} decodes, ${(batchTokens / decodes).toFixed(2)} tokens per decode (prompts included), ${outOfOrder} with sequence ids out of order`);
  await engine.close();
}
stopServer();
process.exit(0);
