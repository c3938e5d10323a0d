import { BlockSplitter } from './blocks.js';
import { enhance } from './enhance.js';
import { renderMarkdown } from './render.js';

/** Completed blocks per chunk (see `chunkFor`). */
const CHUNK_BLOCKS = 12;

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
  private chunk: HTMLElement | null = null;

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
      this.chunkFor().append(element);
      enhance(element);
    }
    const tail = this.splitter.tail;
    if (tail !== this.tailSource) {
      this.tailSource = tail;
      this.tail.replaceChildren(renderMarkdown(tail));
    }
  }

  /**
   * The chunk the next completed block goes into: blocks are grouped CHUNK_BLOCKS at a time, and a chunk off
   * screen skips style, layout and paint (content-visibility, in the page's CSS). Per block, that check would
   * itself cost each frame as much as a long reply's paint did; per chunk it is a few elements.
   */
  private chunkFor(): HTMLElement {
    if (this.chunk === null || this.chunk.childElementCount >= CHUNK_BLOCKS) {
      this.chunk = document.createElement('div');
      this.chunk.className = 'md-chunk';
      this.root.insertBefore(this.chunk, this.tail);
    }
    return this.chunk;
  }

  private reset(): void {
    this.splitter = new BlockSplitter();
    this.tailSource = '';
    this.closed = false;
    this.chunk = null;
    this.root.replaceChildren(this.tail);
    this.tail.replaceChildren();
  }
}
