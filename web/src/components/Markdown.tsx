import { useLayoutEffect, useRef } from 'react';
import { IncrementalMarkdown } from '../markdown/incremental.js';
import { store } from '../state/store.js';

interface MarkdownProps {
  /** The stored text (final when not streaming). */
  readonly text: string;
  /** While true, the text comes from the live reply `messageId`, drawn at most once per frame. */
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
    const draw = (): void => {
      frame = 0;
      markdown.update(store.live.get(messageId)?.text ?? text, false);
    };
    draw();
    const unsubscribe = store.live.subscribe(messageId, () => {
      if (frame === 0) frame = requestAnimationFrame(draw);
    });
    return () => {
      unsubscribe();
      if (frame !== 0) cancelAnimationFrame(frame);
    };
  }, [text, streaming, messageId]);

  return <div ref={ref} className={streaming ? 'markdown streaming' : 'markdown'} />;
}
