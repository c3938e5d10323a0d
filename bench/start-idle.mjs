/**
 * Start to ready, idle CPU and private memory of the embedded engine on one GGUF, for one or more builds of the
 * CLI and llama-server, interleaved (the order reverses each round), medians reported. For each start: wall time
 * from spawn to the first 200 from /ready (llama-server: /health), and the server's CPU (utime + stime from
 * /proc/PID/stat) up to then, its own and its waited-for children's (node-llama-cpp's binary-check subprocess);
 * with --idle S: 5 s after ready, CPU over S seconds idle, then RSS and RssAnon (private: without the mapped
 * model). Same flags on both sides as bench/engine-peer.ts at threads 1 (4 sequences × 2,048 tokens, batch 512).
 * The first start of each build is not counted (it creates the store and remembers the chat wrapper).
 *
 *   node bench/start-idle.mjs [--rounds 3] [--idle 30] [--model .cache/models/parlance-bench.gguf]
 *        [--peer .cache/peers/llama.cpp/build/bin/llama-server] name=dist/src/cli.js [before=/tmp/base/dist/src/cli.js]
 *
 * Write the model first with `node dist/src/engines/llama-cpp/tiny-model.js --bench`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string', default: '3' }, idle: { type: 'string', default: '0' }, model: { type: 'string', default: '.cache/models/parlance-bench.gguf' }, extra: { type: 'string', default: '' }, peer: { type: 'string' } } });
const variants = positionals.map((p) => { const [name, cli] = p.split('='); return { name, cli }; });
const peer = values.peer ?? '.cache/peers/llama.cpp/build/bin/llama-server';
if (existsSync(peer)) variants.push({ name: 'llama-server', cli: peer, peer: true });
else console.log(`no llama-server at ${peer} (bench/peers/build-llama-server.sh builds it): Parlance only`);
if (!existsSync(values.model)) throw new Error(`no model at ${values.model}: node dist/src/engines/llama-cpp/tiny-model.js --bench`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () => new Promise((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
function cpu(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { self: (Number(f[11]) + Number(f[12])) * 10, children: (Number(f[13]) + Number(f[14])) * 10 };
}
function mem(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1]);
  return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 };
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length / 2; return s.length % 2 ? s[Math.floor(m)] : (s[m - 1] + s[m]) / 2; };
const dir = mkdtempSync(join(tmpdir(), 'measure-'));
const results = new Map(variants.map((v) => [v.name, []]));
async function once(v) {
  const port = await freePort();
  const args = v.peer
    ? ['-m', values.model, '--host', '127.0.0.1', '--port', String(port), '-t', '1', '-tb', '1', '-np', '4', '-c', '8192', '-b', '512', '-ub', '512', '-ngl', '0', '--no-webui']
    : [v.cli, 'serve', '--model', values.model, '--host', '127.0.0.1', '--port', String(port), '--threads', '1', '--sequences', '4', '--context-size', '2048', '--queue-length', '8', '--gpu', 'off', '--models-dir', join(dir, 'models'), '--data-dir', join(dir, `data-${v.name}`), '--log-level', 'warn', ...values.extra.split(' ').filter(Boolean)];
  const env = {}; for (const [k, val] of Object.entries(process.env)) if (!k.startsWith('PARLANCE_')) env[k] = val;
  const t0 = performance.now();
  const child = spawn(v.peer ? v.cli : process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = ''; child.stderr.on('data', (c) => (tail = (tail + c).slice(-2000)));
  const path = v.peer ? '/health' : '/ready';
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${v.name} exited: ${tail}`);
    const ok = await fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.ok, () => false);
    if (ok) break;
    await sleep(10);
  }
  const ms = performance.now() - t0;
  const c = cpu(child.pid);
  const r = { ms, cpu: c.self, childCpu: c.children };
  if (Number(values.idle) > 0) {
    await sleep(5000);
    const a = cpu(child.pid).self;
    await sleep(Number(values.idle) * 1000);
    r.idleCpu = cpu(child.pid).self - a;
    Object.assign(r, mem(child.pid));
  }
  child.kill('SIGTERM');
  await new Promise((res) => child.once('exit', res));
  return r;
}
try {
  for (const v of variants) await once(v); // warm: store created, page cache
  for (let i = 0; i < Number(values.rounds); i++) {
    const order = i % 2 ? [...variants].reverse() : variants;
    for (const v of order) {
      const r = await once(v);
      results.get(v.name).push(r);
      console.log(`${v.name}: ${Math.round(r.ms)} ms wall, cpu ${r.cpu} ms (+children ${r.childCpu})` + (r.idleCpu !== undefined ? `, idle ${r.idleCpu} ms/${values.idle}s, rss ${r.rss.toFixed(0)} anon ${r.anon.toFixed(1)} MB` : '') + ` load ${loadavg()[0].toFixed(1)}`);
    }
  }
  for (const [name, list] of results) {
    const m = (k) => median(list.map((r) => r[k]));
    console.log(`MEDIAN ${name}: wall ${Math.round(m('ms'))} ms, cpu ${m('cpu')} ms, child cpu ${m('childCpu')}` + (list[0]?.idleCpu !== undefined ? `, idle cpu ${m('idleCpu')} ms/${values.idle}s, anon ${m('anon').toFixed(1)} MB, rss ${m('rss').toFixed(0)}` : ''));
  }
} finally { rmSync(dir, { recursive: true, force: true }); }
