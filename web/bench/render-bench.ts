import { IncrementalMarkdown } from '../src/markdown/incremental.js';
import { renderMarkdown } from '../src/markdown/render.js';

/**
 * The browser half of bench/ui-render.ts: streams a Markdown text into the
 * page at a fixed token rate, rendered either the way the chat page does
 * (IncrementalMarkdown, one update per animation frame) or naively (the whole
 * text re-parsed, sanitised and re-inserted on every token). Render time is
 * the time spent in those calls plus the layout they force; long tasks
 * (>50 ms) come from the browser's own PerformanceObserver.
 */

export interface RunResult {
  readonly mode: 'incremental' | 'naive';
  readonly tokens: number;
  readonly renders: number;
  readonly renderMs: number;
  readonly maxRenderMs: number;
  readonly wallMs: number;
  readonly longTasks: readonly number[];
  readonly chars: number;
}

const longTasks: { start: number; duration: number }[] = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) longTasks.push({ start: entry.startTime, duration: entry.duration });
}).observe({ type: 'longtask', buffered: true });

function tokenize(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

function run(mode: 'incremental' | 'naive', text: string, tokensPerSecond: number): Promise<RunResult> {
  const out = document.getElementById('out');
  if (!out) throw new Error('no #out');
  out.replaceChildren();
  const tokens = tokenize(text);
  const incremental = mode === 'incremental' ? new IncrementalMarkdown(out) : null;
  let buffer = '';
  let fed = 0;
  let renders = 0;
  let renderMs = 0;
  let maxRenderMs = 0;
  let frame = 0;
  const started = performance.now();
  const firstLongTask = longTasks.length;

  const measure = (work: () => void): void => {
    const t0 = performance.now();
    work();
    void out.offsetHeight; // include the layout the update causes
    const spent = performance.now() - t0;
    renderMs += spent;
    maxRenderMs = Math.max(maxRenderMs, spent);
    renders++;
  };

  return new Promise((resolve) => {
    const finish = (): void => {
      if (incremental) measure(() => incremental.update(buffer, true));
      // Let the observer deliver the last entries.
      setTimeout(() => {
        resolve({
          mode,
          tokens: tokens.length,
          renders,
          renderMs,
          maxRenderMs,
          wallMs: performance.now() - started,
          longTasks: longTasks.slice(firstLongTask).map((task) => task.duration),
          chars: out.textContent?.length ?? 0,
        });
      }, 100);
    };
    const tick = (): void => {
      const due = Math.min(tokens.length, Math.floor(((performance.now() - started) * tokensPerSecond) / 1000) + 1);
      while (fed < due) {
        buffer += tokens[fed] ?? '';
        fed++;
        if (!incremental) {
          const snapshot = buffer;
          measure(() => out.replaceChildren(renderMarkdown(snapshot)));
        }
      }
      if (incremental && frame === 0)
        frame = requestAnimationFrame(() => {
          frame = 0;
          measure(() => incremental.update(buffer, false));
        });
      if (fed >= tokens.length) {
        if (frame !== 0) cancelAnimationFrame(frame);
        finish();
        return;
      }
      setTimeout(tick, 1000 / tokensPerSecond);
    };
    tick();
  });
}

declare global {
  interface Window {
    parlanceBench: { run: typeof run };
  }
}
window.parlanceBench = { run };
