/**
 * The chat page's smoothness, end to end: a real Parlance (scripted engine,
 * 20 ms per token ≈ 50 tokens/s) streams a ~20 KB Markdown reply into the
 * full page in headless Chromium, at 1x and 4x CPU throttling (DevTools'
 * Emulation.setCPUThrottlingRate). A PerformanceObserver in the page records
 * every long task (over 50 ms): while the 20 KB message is pasted (Ctrl+V)
 * and filled (Playwright's fill: text committed at once) into the composer,
 * while the reply streams, and while the sent message opens for editing.
 * Also the renderer processes' CPU time over the reply (`rendererCpuMs`): the page's own work, which a busy
 * machine does not inflate as it does long tasks. Figures only; nothing is asserted.
 *
 * Run: npx tsx bench/page-smoothness.ts [--rates 1,4] [--delay 20] [--runs 1]   (medians when runs > 1)
 */
import { launchChromium, openPage, startScriptedServer, waitForReplyEnd } from '../test/browser/harness.js';
import { ensureWebBuilt } from '../web/ensure-built.js';
import { arg } from './lib/args.js';
import { median, rendererCpuMs } from './lib/measure.js';
import { sampleReply } from './ui-render.js';

interface Figures {
  readonly count: number;
  readonly totalMs: number;
  readonly maxMs: number;
  /** Total blocking time: the part of each long task past 50 ms. */
  readonly tbtMs: number;
}

function figures(durations: readonly number[]): Figures {
  return {
    count: durations.length,
    totalMs: Math.round(durations.reduce((sum, d) => sum + d, 0)),
    maxMs: Math.round(Math.max(0, ...durations)),
    tbtMs: Math.round(durations.reduce((sum, d) => sum + Math.max(0, d - 50), 0)),
  };
}

/** Each figure's median over runs (so the line mixes runs: it is a summary, not one run). */
const medianFigures = (list: readonly Figures[]): Figures => ({
  count: median(list.map((f) => f.count)),
  totalMs: Math.round(median(list.map((f) => f.totalMs))),
  maxMs: Math.round(median(list.map((f) => f.maxMs))),
  tbtMs: Math.round(median(list.map((f) => f.tbtMs))),
});

const show = (f: Figures): string => `${f.count} long tasks, total ${f.totalMs} ms, longest ${f.maxMs} ms, TBT ${f.tbtMs} ms`;

async function main(): Promise<void> {
  const rates = arg('rates', '1,4').split(',').map(Number);
  const delay = Number(arg('delay', '20'));
  const runs = Number(arg('runs', '1'));
  await ensureWebBuilt();
  const text = sampleReply();
  const session = await launchChromium();
  const server = await startScriptedServer({ scriptedDelayMs: delay });
  try {
    const results = new Map<string, Figures[]>();
    const record = (key: string, value: Figures): void => void results.set(key, [...(results.get(key) ?? []), value]);
    for (let run = 1; run <= runs; run++) for (const rate of rates) {
      const app = await openPage(session.browser, server.url, { permissions: ['clipboard-read', 'clipboard-write'] });
      const cdp = await app.context.newCDPSession(app.page);
      await app.page.addInitScript({ content: "window.__longTasks = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longTasks.push(e.duration); }).observe({ type: 'longtask', buffered: true });" });
      await app.page.goto(server.url);
      const box = app.page.getByLabel('Message', { exact: true });
      await box.waitFor();
      await cdp.send('Emulation.setCPUThrottlingRate', { rate });
      await app.page.evaluate('window.__longTasks.length = 0');
      // A paste (Ctrl+V from the clipboard), then emptied, then Playwright's fill (text committed at once).
      await app.page.evaluate(`navigator.clipboard.writeText(${JSON.stringify(text)})`);
      await box.focus();
      await app.page.evaluate('window.__longTasks.length = 0');
      await app.page.keyboard.press('ControlOrMeta+V');
      await app.page.waitForTimeout(300);
      const paste = figures(await app.page.evaluate<number[]>('window.__longTasks.splice(0)'));
      const pasted = await box.inputValue();
      await box.fill('');
      await app.page.waitForTimeout(300);
      await app.page.evaluate('window.__longTasks.length = 0');
      await box.fill(text);
      await app.page.waitForTimeout(300);
      const fill = figures(await app.page.evaluate<number[]>('window.__longTasks.splice(0)'));
      const started = Date.now();
      const cpuBefore = await rendererCpuMs();
      await box.press('Enter');
      await waitForReplyEnd(app.page, 600_000);
      const streamed = figures(await app.page.evaluate<number[]>('window.__longTasks.splice(0)'));
      const cpuMs = (await rendererCpuMs()) - cpuBefore;
      const chars = await app.page.evaluate<number>("document.querySelectorAll('article.from-assistant .markdown')[0].textContent.length");
      // Editing the sent 20 KB message: its text fills the edit box.
      await app.page.getByRole('button', { name: 'Edit and resend' }).click();
      const editBox = app.page.getByLabel('Edit your message');
      await editBox.waitFor();
      await app.page.waitForTimeout(300);
      const edit = figures(await app.page.evaluate<number[]>('window.__longTasks.splice(0)'));
      const editLength = (await editBox.inputValue()).length;
      console.log(`CPU ${rate}x: pasting ${(text.length / 1024).toFixed(1)} KB into the composer (${pasted === text ? 'all of it' : `got ${pasted.length} characters`}): ${show(paste)}`);
      console.log(`CPU ${rate}x: filling ${(text.length / 1024).toFixed(1)} KB into the composer: ${show(fill)}`);
      console.log(`CPU ${rate}x: the reply (${(chars / 1024).toFixed(1)} KB of text, ${((Date.now() - started) / 1000).toFixed(1)} s): ${show(streamed)}; renderer CPU ${(cpuMs / 1000).toFixed(1)} s`);
      console.log(`CPU ${rate}x: opening the ${(editLength / 1024).toFixed(1)} KB message for editing: ${show(edit)}`);
      record(`CPU ${rate}x: paste`, paste);
      record(`CPU ${rate}x: fill`, fill);
      record(`CPU ${rate}x: reply`, streamed);
      record(`CPU ${rate}x: edit`, edit);
      await app.context.close();
    }
    if (runs > 1) {
      console.log(`medians of ${runs} runs:`);
      for (const [key, list] of results) console.log(`${key}: ${show(medianFigures(list))}`);
    }
  } finally {
    await server.stop();
    await session.close();
  }
}

await main();
