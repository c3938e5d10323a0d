import { BlockSplitter } from './blocks.js';
import { enhance } from './enhance.js';
import { morphChildren } from './morph.js';
import { renderMarkdown } from './render.js';

/** Completed blocks per chunk (see `chunkFor`). */
const CHUNK_BLOCKS = 12;

/**
 * Renders a growing Markdown text into a container without redoing work:
 * completed blocks are parsed, sanitised, inserted and enhanced once; only
 * the open last block is re-rendered on each update, and its live nodes are
 * patched (`morphChildren`), not replaced.
 *
 * The work comes in two halves, so that a streaming reply never adds its Markdown to the frame that draws it
 * (at 4x CPU throttling the two together went over 50 ms): `feed` and `work` parse and sanitise into detached
 * nodes, a slice at a time, in tasks of their own; `commit`, in an animation frame, only moves those nodes in.
 * `update` does all three at once, for text that is not streaming.
 */
export class IncrementalMarkdown {
  private splitter = new BlockSplitter();
  private readonly tail: HTMLElement;
  /** The open block's source as the page shows it. */
  private tailSource = '';
  private closed = false;
  private chunk: HTMLElement | null = null;
  /** Completed blocks waiting to be rendered, in order. */
  private readonly queued: string[] = [];
  /** Completed blocks rendered, not yet on the page. */
  private readonly rendered: HTMLElement[] = [];
  /** The open block rendered, not yet on the page (only once every block before it is rendered). */
  private renderedTail: { readonly source: string; readonly nodes: DocumentFragment } | null = null;
  /** The text no longer extends what is shown: the page is emptied at the next commit. */
  private clearOnCommit = false;

  constructor(private readonly root: HTMLElement) {
    this.tail = document.createElement('div');
    this.tail.className = 'md-tail';
    root.replaceChildren(this.tail);
  }

  /** Shows `text` at once; `final` when no more text will come (the last block is then completed too). */
  update(text: string, final: boolean): void {
    this.feed(text, final);
    this.work(Number.POSITIVE_INFINITY);
    this.commit();
  }

  /** Takes the text so far (cheap: it only splits off the blocks it completes). */
  feed(text: string, final: boolean): void {
    if (this.closed && text === this.splitter.source) return;
    if (this.closed || !this.splitter.extends(text)) this.reset();
    this.queued.push(...this.splitter.update(text));
    if (final) {
      this.queued.push(...this.splitter.finish());
      this.closed = true;
    }
  }

  /**
   * Renders what `feed` left to do, until `budgetMs` has passed (one block at least); answers true when all is
   * ready to `commit`. A reply that arrives in one piece (a reload mid-reply) is many blocks: they are rendered
   * over several tasks, never all in one.
   */
  work(budgetMs: number): boolean {
    const started = performance.now();
    let first = true;
    while (this.queued.length > 0) {
      if (!first && performance.now() - started >= budgetMs) return false;
      first = false;
      const element = document.createElement('div');
      element.className = 'md-block';
      element.append(renderMarkdown(this.queued.shift() ?? ''));
      this.rendered.push(element);
      // What was rendered of the open block is now (part of) this block.
      this.renderedTail = null;
    }
    const tail = this.splitter.tail;
    const shown = this.renderedTail?.source ?? (this.rendered.length === 0 && !this.clearOnCommit ? this.tailSource : null);
    if (shown === tail) return true;
    if (!first && performance.now() - started >= budgetMs) return false;
    this.renderedTail = { source: tail, nodes: renderMarkdown(tail) };
    return true;
  }

  /** True when `work` has something for `commit`. */
  get hasWork(): boolean {
    return this.queued.length > 0 || this.rendered.length > 0 || this.renderedTail !== null || this.splitter.tail !== this.tailSource || this.clearOnCommit;
  }

  /** Puts what `work` rendered on the page. Call only once `work` answered true (else the page would show a block twice). */
  commit(): void {
    if (this.clearOnCommit) {
      this.clearOnCommit = false;
      this.chunk = null;
      this.root.replaceChildren(this.tail);
      this.tail.replaceChildren();
    }
    for (const element of this.rendered.splice(0)) {
      this.chunkFor().append(element);
      enhance(element);
    }
    const tail = this.renderedTail;
    this.renderedTail = null;
    if (tail !== null && tail.source !== this.tailSource) {
      this.tailSource = tail.source;
      morphChildren(this.tail, tail.nodes);
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
    this.closed = false;
    this.queued.length = 0;
    this.rendered.length = 0;
    this.renderedTail = null;
    this.tailSource = '';
    this.clearOnCommit = true;
  }
}
