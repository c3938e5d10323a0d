/**
 * Splits a growing Markdown text into top-level blocks that can no longer
 * change, so each is parsed and rendered once and only the last, open block
 * is re-rendered as text arrives. A block ends at a blank line followed by a
 * line that starts in column 0 (an indented line may continue a list item or
 * an indented code block), never inside a fenced code block or a `$$` math
 * block. Only whole lines are looked at, and each line only once: the cost of
 * a delta is the cost of its own text, however long the reply is.
 *
 * Known limit: reference-style link definitions (`[x]: url`) apply only within
 * their block; models rarely write them.
 */
export class BlockSplitter {
  private text = '';
  /** Where the next unscanned line starts. */
  private scanned = 0;
  /** Where the open (last) block starts. */
  private blockStart = 0;
  private fence: { readonly char: string; readonly length: number } | null = null;
  private inMath = false;
  private blankSeen = false;

  /** The open block: everything after the last completed one. */
  get tail(): string {
    return this.text.slice(this.blockStart);
  }

  /** The whole text given so far. */
  get source(): string {
    return this.text;
  }

  /**
   * Takes the whole text so far, which must extend the previous one (check
   * with `extends`), and answers the blocks it completed, in order.
   */
  update(text: string): string[] {
    this.text = text;
    const done: string[] = [];
    for (;;) {
      const newline = text.indexOf('\n', this.scanned);
      if (newline < 0) break;
      const lineStart = this.scanned;
      this.scanned = newline + 1;
      const boundary = this.line(text.slice(lineStart, newline));
      if (boundary && lineStart > this.blockStart) {
        done.push(text.slice(this.blockStart, lineStart));
        this.blockStart = lineStart;
      }
    }
    return done;
  }

  /** True when `text` continues what this splitter has seen (else start a new one). */
  extends(text: string): boolean {
    return text.length >= this.text.length && text.startsWith(this.text);
  }

  /** Closes the open block (the text is complete): answers it, if it has any content. */
  finish(): string[] {
    const tail = this.tail;
    this.blockStart = this.text.length;
    this.scanned = this.text.length;
    return tail.trim() === '' ? [] : [tail];
  }

  /** Looks at one complete line; answers whether a new block starts at it. */
  private line(line: string): boolean {
    if (this.fence) {
      const match = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
      if (match?.[1] && match[1][0] === this.fence.char && match[1].length >= this.fence.length) this.fence = null;
      return false;
    }
    if (this.inMath) {
      const trimmed = line.trim();
      if (trimmed.endsWith('$$') || trimmed.endsWith('\\]')) this.inMath = false;
      return false;
    }
    if (line.trim() === '') {
      this.blankSeen = true;
      return false;
    }
    const boundary = this.blankSeen && !/^[ \t]/.test(line);
    this.blankSeen = false;
    const fence = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (fence?.[1] && !(fence[1][0] === '`' && (fence[2] ?? '').includes('`'))) {
      this.fence = { char: fence[1][0] ?? '`', length: fence[1].length };
    } else {
      const trimmed = line.trim();
      if (trimmed === '$$' || trimmed === '\\[' || ((trimmed.startsWith('$$') || trimmed.startsWith('\\[')) && !/(\$\$|\\\])$/.test(trimmed.slice(2)))) this.inMath = true;
    }
    return boundary;
  }
}
