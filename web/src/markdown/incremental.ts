import { BlockSplitter } from './blocks.js';
import { enhance } from './enhance.js';
import { renderMarkdown } from './render.js';

/**
 * Renders a growing Markdown text into a container without redoing work:
 * completed blocks are parsed, sanitised, inserted and enhanced once; only
 * the open last block is re-rendered on each update. Callers batch updates
 * (one per animation frame), so a reply's cost per frame is bounded by the
 * size of its last block, not by its length.
 */
export class IncrementalMarkdown {
  private splitter = new BlockSplitter();
  private readonly tail: HTMLElement;
  private tailSource = '';
  private closed = false;

  constructor(private readonly root: HTMLElement) {
    this.tail = document.createElement('div');
    this.tail.className = 'md-tail';
    root.replaceChildren(this.tail);
  }

  /** Shows `text`; `final` when no more text will come (the last block is then completed too). */
  update(text: string, final: boolean): void {
    if (this.closed && text === this.splitter.source) return;
    if (this.closed || !this.splitter.extends(text)) this.reset();
    const blocks = this.splitter.update(text);
    if (final) {
      blocks.push(...this.splitter.finish());
      this.closed = true;
    }
    for (const block of blocks) {
      const element = document.createElement('div');
      element.className = 'md-block';
      element.append(renderMarkdown(block));
      this.root.insertBefore(element, this.tail);
      enhance(element);
    }
    const tail = this.splitter.tail;
    if (tail !== this.tailSource) {
      this.tailSource = tail;
      this.tail.replaceChildren(renderMarkdown(tail));
    }
  }

  private reset(): void {
    this.splitter = new BlockSplitter();
    this.tailSource = '';
    this.closed = false;
    this.root.replaceChildren(this.tail);
    this.tail.replaceChildren();
  }
}
