import { useLayoutEffect, useRef } from 'react';
import { IncrementalMarkdown } from '../markdown/incremental.js';
import { store } from '../state/store.js';

/**
 * The least time between two draws of a streaming reply. Each draw is a frame of style, layout and paint on
 * top of the Markdown itself; ten a second read as smooth text and leave the page time for everything else.
 */
const MIN_DRAW_INTERVAL_MS = 100;

interface MarkdownProps {
  /** The stored text (final when not streaming). */
  readonly text: string;
  /** While true, the text comes from the live reply `messageId`, drawn at most once per frame and MIN_DRAW_INTERVAL_MS. */
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
    const draw = (): void => {
      frame = 0;
      drawnAt = performance.now();
      markdown.update(store.live.get(messageId)?.text ?? text, false);
    };
    draw();
    const unsubscribe = store.live.subscribe(messageId, () => {
      if (frame !== 0 || timer !== undefined) return;
      const wait = drawnAt + MIN_DRAW_INTERVAL_MS - performance.now();
      if (wait <= 0) frame = requestAnimationFrame(draw);
      else
        timer = setTimeout(() => {
          timer = undefined;
          frame = requestAnimationFrame(draw);
        }, wait);
    });
    return () => {
      unsubscribe();
      if (frame !== 0) cancelAnimationFrame(frame);
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [text, streaming, messageId]);

  return <div ref={ref} className={streaming ? 'markdown streaming' : 'markdown'} />;
}
