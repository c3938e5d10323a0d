import { performance } from 'node:perf_hooks';
import { LlamaCppEngine } from '../src/engines/llama-cpp/engine.js';
const modelPath = process.argv[2] ?? '.cache/models/parlance-tiny.gguf';
const streams = Number(process.argv[3] ?? 4); const tokens = Number(process.argv[4] ?? 200);
const engine = await LlamaCppEngine.create({ modelPath, modelId: 'bench', gpu: 'off', threads: 1, sequences: 4, contextSize: 2048, defaultMaxTokens: tokens, queueLength: 8 });
const holder = Reflect.get(engine, 'context') as object;
const native = Reflect.get(holder, '_ctx') as object;
const sync = new Map<string, number>(); const calls = new Map<string, number>();
let decodeStart = 0; let decodeWall = 0; let decodes = 0; let decodeEnd = 0; let lastSample = 0; let sampleGap = 0; let jsGap = 0;
Reflect.set(holder, '_ctx', new Proxy(native, { get(target, key) {
  const value: unknown = Reflect.get(target, key); if (typeof value !== 'function') return value;
  return (...args: unknown[]): unknown => { const t = performance.now(); const r = Reflect.apply(value as (...a: unknown[]) => unknown, target, args); const k = String(key);
    sync.set(k, (sync.get(k) ?? 0) + performance.now() - t); calls.set(k, (calls.get(k) ?? 0) + 1);
    if (k === 'decodeBatch' && r instanceof Promise) { const now = performance.now(); if (decodeEnd > 0) { sampleGap += Math.max(0, lastSample - decodeEnd); jsGap += now - Math.max(lastSample, decodeEnd); } decodes++; decodeStart = now; void r.then(() => { decodeEnd = performance.now(); lastSample = 0; decodeWall += decodeEnd - decodeStart; }); }
    if (k === 'sampleToken' && r instanceof Promise) void r.then(() => { lastSample = performance.now(); });
    return r; };
} }));
const run = async (i: number): Promise<number> => { const counts = await Promise.all(Array.from({ length: streams }, async (_, s) => {
  const g = await engine.open({ model: 'bench', input: { kind: 'chat', messages: [{ role: 'user', content: `Run ${i}.${s} tell me a story` }] }, sampling: { temperature: 0.8, topP: 0.95, maxTokens: tokens, seed: 42 + s } }, new AbortController().signal);
  let n = 0; for await (const e of g) if (e.type === 'usage') n = e.usage.completionTokens; return n; })); return counts.reduce((a, b) => a + b, 0); };
await run(0); sync.clear(); calls.clear(); decodes = 0; decodeWall = 0; sampleGap = 0; jsGap = 0; decodeEnd = 0;
const elu0 = performance.eventLoopUtilization(); const t0 = performance.now(); const cpu0 = process.cpuUsage();
let total = 0; for (let i = 1; i <= 3; i++) total += await run(i);
const wall = performance.now() - t0; const elu = performance.eventLoopUtilization(elu0); const cpu = process.cpuUsage(cpu0);
console.log(`tokens ${total} wall ${wall.toFixed(0)} ms  ${(total * 1000 / wall).toFixed(1)} tok/s  decodes ${decodes} (${(total / decodes).toFixed(2)} tok/step)`);
console.log(`per step: wall ${(wall / decodes).toFixed(2)} ms, decode (dispatch→resolve) ${(decodeWall / decodes).toFixed(2)} ms, main thread busy ${(elu.active / decodes).toFixed(2)} ms, process CPU ${((cpu.user + cpu.system) / 1000 / decodes).toFixed(2)} ms`);
console.log(`gap after decode: sampling ${(sampleGap / decodes).toFixed(2)} ms, then JS until the next decode ${(jsGap / decodes).toFixed(2)} ms (between runs included)`);
for (const [k, v] of [...sync].sort((a, b) => b[1] - a[1])) console.log(`  ${k}: ${(v / decodes).toFixed(3)} ms/step sync, ${((calls.get(k) ?? 0) / decodes).toFixed(2)} calls/step`);
await engine.close();
