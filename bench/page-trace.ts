/**
 * Where the chat page's long tasks go: the page-smoothness scenario (a 20 KB
 * reply streamed at ~50 tokens/s into the full page, after filling the 20 KB
 * message into the composer) under a Chromium trace, summarised per long task
 * by what ran inside it (script, style, layout, paint…). A diagnosis tool for
 * bench/page-smoothness.ts; nothing is asserted.
 *
 * Run: npx tsx bench/page-trace.ts [--rate 4] [--phase fill|reply] [--out trace.json]
 */
import { writeFile } from 'node:fs/promises';
import { launchChromium, openPage, startScriptedServer, waitForReplyEnd } from '../test/browser/harness.js';
import { ensureWebBuilt } from '../web/ensure-built.js';
import { arg } from './lib/args.js';
import { sampleReply } from './ui-render.js';

interface TraceEvent {
  readonly name: string;
  readonly ph: string;
  readonly ts: number;
  readonly dur?: number;
  readonly pid: number;
  readonly tid: number;
  readonly args?: { readonly name?: string; readonly data?: Record<string, unknown> };
}

/** The renderer's main thread: the thread named CrRendererMain that ran the most work. */
function mainThread(events: readonly TraceEvent[]): { pid: number; tid: number } {
  const named = events.filter((event) => event.ph === 'M' && event.name === 'thread_name' && event.args?.name === 'CrRendererMain');
  let best = { pid: 0, tid: 0, busy: -1 };
  for (const thread of named) {
    const busy = events.filter((event) => event.pid === thread.pid && event.tid === thread.tid && event.ph === 'X').reduce((sum, event) => sum + (event.dur ?? 0), 0);
    if (busy > best.busy) best = { pid: thread.pid, tid: thread.tid, busy };
  }
  return best;
}

const LEAF_NAMES = new Set(['FunctionCall', 'EvaluateScript', 'v8.compile', 'UpdateLayoutTree', 'Layout', 'PrePaint', 'Paint', 'Layerize', 'ParseHTML', 'HitTest', 'ScrollLayer', 'UpdateLayer', 'Commit', 'IntersectionObserverController::computeIntersections', 'ResizeObserverController::DeliverObservations', 'v8.gc', 'MinorGC', 'MajorGC', 'V8.GC_SCAVENGER', 'V8.GC_MARK_COMPACTOR']);

function summarise(events: readonly TraceEvent[], thresholdMs: number): void {
  const { pid, tid } = mainThread(events);
  const own = events.filter((event) => event.pid === pid && event.tid === tid && event.ph === 'X').sort((a, b) => a.ts - b.ts);
  const tasks = own.filter((event) => event.name === 'ThreadControllerImpl::RunTask' || event.name === 'RunTask');
  const long = tasks.filter((task) => (task.dur ?? 0) / 1000 > thresholdMs);
  const totals = new Map<string, number>();
  console.log(`${tasks.length} tasks, ${long.length} over ${thresholdMs} ms`);
  for (const task of long.slice(0, 400)) {
    const end = task.ts + (task.dur ?? 0);
    const inside = own.filter((event) => event.ts >= task.ts && event.ts + (event.dur ?? 0) <= end && event !== task);
    const parts = new Map<string, number>();
    // Count only the outermost event of each kind we know, so nested ones are not counted twice.
    let coveredUntil = -1;
    for (const event of inside) {
      if (!LEAF_NAMES.has(event.name)) continue;
      if (event.ts < coveredUntil) continue;
      coveredUntil = event.ts + (event.dur ?? 0);
      let label = event.name;
      if (event.name === 'FunctionCall' || event.name === 'EvaluateScript') {
        const data = event.args?.data ?? {};
        label = `${event.name} ${String(data['functionName'] ?? '')}@${String(data['url'] ?? '').replace(/^.*\//, '')}:${String(data['lineNumber'] ?? '')}`;
      }
      parts.set(label, (parts.get(label) ?? 0) + (event.dur ?? 0) / 1000);
    }
    const timers = inside.filter((event) => ['TimerFire', 'FireAnimationFrame', 'EventDispatch', 'XHRReadyStateChange'].includes(event.name)).map((event) => `${event.name}${event.args?.data?.['type'] ? `(${String(event.args.data['type'])})` : ''}`);
    const list = [...parts].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([name, ms]) => `${name} ${ms.toFixed(0)}`);
    for (const [name, ms] of parts) totals.set(name.replace(/:\d+$/, ''), (totals.get(name.replace(/:\d+$/, '')) ?? 0) + ms);
    console.log(`${((task.dur ?? 0) / 1000).toFixed(0)} ms [${[...new Set(timers)].join(',')}]: ${list.join('; ')}`);
  }
  console.log('--- totals inside long tasks (ms):');
  for (const [name, ms] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${ms.toFixed(0)}\t${name}`);
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number };
  readonly children?: readonly number[];
}

/** Self time and total time per function of a CPU profile, the top 30 of each. */
function summariseProfile(result: { nodes: readonly ProfileNode[]; samples?: readonly number[]; timeDeltas?: readonly number[] }): void {
  const byId = new Map(result.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of result.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const label = (node: ProfileNode): string => `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\//, '')}:${node.callFrame.lineNumber + 1}:${node.callFrame.columnNumber + 1}`;
  const samples = result.samples ?? [];
  const deltas = result.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const ms = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
    let node = byId.get(samples[i] ?? -1);
    if (!node) continue;
    self.set(label(node), (self.get(label(node)) ?? 0) + ms);
    const seen = new Set<string>();
    while (node) {
      const name = label(node);
      if (!seen.has(name)) total.set(name, (total.get(name) ?? 0) + ms);
      seen.add(name);
      node = byId.get(parent.get(node.id) ?? -1);
    }
  }
  const top = (map: Map<string, number>): string => [...map].sort((a, b) => b[1] - a[1]).slice(0, 30).map(([name, ms]) => `${ms.toFixed(0)}\t${name}`).join('\n');
  console.log(`--- self time (ms):\n${top(self)}\n--- total time (ms):\n${top(total)}`);
}

async function main(): Promise<void> {
  const rate = Number(arg('rate', '4'));
  const phase = arg('phase', 'reply');
  const out = arg('out', '');
  const textBytes = Number(arg('bytes', '20000'));
  await ensureWebBuilt();
  const text = sampleReply(textBytes);
  const session = await launchChromium();
  const server = await startScriptedServer({ scriptedDelayMs: Number(arg('delay', '20')) });
  try {
    const app = await openPage(session.browser, server.url, process.argv.includes('--reduced-motion') ? { reducedMotion: 'reduce' } : {});
    const cdp = await app.context.newCDPSession(app.page);
    await app.page.goto(server.url);
    const box = app.page.getByLabel('Message', { exact: true });
    await box.waitFor();
    await cdp.send('Emulation.setCPUThrottlingRate', { rate });
    const categories = ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'blink.user_timing', 'toplevel'];
    if (phase === 'fill') await session.browser.startTracing(app.page, { categories });
    await box.fill(text);
    await app.page.waitForTimeout(300);
    const profile = process.argv.includes('--profile');
    if (phase === 'reply') {
      if (profile) {
        await cdp.send('Profiler.enable');
        await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
        await cdp.send('Profiler.start');
      } else await session.browser.startTracing(app.page, { categories });
    }
    else {
      const buffer = await session.browser.stopTracing();
      if (out) await writeFile(out, buffer);
      summarise((JSON.parse(buffer.toString()) as { traceEvents: TraceEvent[] }).traceEvents, 50);
      return;
    }
    await box.press('Enter');
    await waitForReplyEnd(app.page, 600_000);
    if (profile) {
      const { profile: result } = await cdp.send('Profiler.stop');
      summariseProfile(result);
      return;
    }
    const buffer = await session.browser.stopTracing();
    if (out) await writeFile(out, buffer);
    summarise((JSON.parse(buffer.toString()) as { traceEvents: TraceEvent[] }).traceEvents, 50);
  } finally {
    await server.stop();
    await session.close();
  }
}

await main();
