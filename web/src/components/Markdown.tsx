import { useLayoutEffect, useRef } from 'react';
import { IncrementalMarkdown } from '../markdown/incremental.js';
import { store } from '../state/store.js';

/**
 * The least time between two draws of a streaming reply. Each draw is a frame of style, layout and paint on
 * top of the Markdown itself; ten a second read as smooth text and leave the page time for everything else.
 */
const MIN_DRAW_INTERVAL_MS = 100;
/**
 * On a slow device (or a busy one) the wait grows with what a draw cost: at least DRAW_COST_FACTOR times its
 * script, so the reply's Markdown and the frame it causes (about as much again in style, layout and paint) keep
 * to a fifth of the main thread, and input, scrolling and timers find it free. Never more than MAX_DRAW_INTERVAL_MS.
 */
const DRAW_COST_FACTOR = 10;
const MAX_DRAW_INTERVAL_MS = 400;
/** The most time one task spends rendering Markdown before it lets the page run (at least one block is rendered). */
const WORK_SLICE_MS = 12;

interface MarkdownProps {
  /** The stored text (final when not streaming). */
  readonly text: string;
  /** While true, the text comes from the live reply `messageId`, drawn at most once per frame and MIN_DRAW_INTERVAL_MS (more on a slow device). */
  readonly streaming: boolean;
  readonly messageId: string;
}

/** A reply rendered as sanitised Markdown, incrementally while it streams. */
export function Markdown({ text, streaming, messageId }: MarkdownProps) {
  const ref = useRef<HTMLDivElement>(null);
  const renderer = useRef<IncrementalMarkdown | null>(null);

  useLayoutEffect(() => {
    const element = ref.current;
    if (!element) return;
    renderer.current ??= new IncrementalMarkdown(element);
    const markdown = renderer.current;
    if (!streaming) {
      markdown.update(text, true);
      return;
    }
    let frame = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let drawnAt = 0;
    let cost = 0;
    let interval = MIN_DRAW_INTERVAL_MS;
    // Markdown is parsed and sanitised in tasks of their own (a slice each, see `work`); the animation frame
    // only moves the rendered nodes in, so a frame carries the browser's own style, layout and paint alone.
    const work = (): void => {
      timer = undefined;
      const started = performance.now();
      markdown.feed(store.live.get(messageId)?.text ?? text, false);
      const done = markdown.work(WORK_SLICE_MS);
      cost += performance.now() - started;
      if (!done) timer = setTimeout(work, 0);
      else if (markdown.hasWork) frame = requestAnimationFrame(draw);
    };
    const draw = (): void => {
      frame = 0;
      drawnAt = performance.now();
      markdown.commit();
      interval = Math.min(MAX_DRAW_INTERVAL_MS, Math.max(MIN_DRAW_INTERVAL_MS, (cost + performance.now() - drawnAt) * DRAW_COST_FACTOR));
      cost = 0;
    };
    // Not here, inside React's commit: a reply's first text (or a reply opened mid-stream) would add its
    // Markdown to the task that rendered the page for the send, which already runs long at 4x throttling.
    timer = setTimeout(work, 0);
    const unsubscribe = store.live.subscribe(messageId, () => {
      if (frame !== 0 || timer !== undefined) return;
      timer = setTimeout(work, Math.max(0, drawnAt + interval - performance.now()));
    });
    return () => {
      unsubscribe();
      if (frame !== 0) cancelAnimationFrame(frame);
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [text, streaming, messageId]);

  return <div ref={ref} className={streaming ? 'markdown streaming' : 'markdown'} />;
}
