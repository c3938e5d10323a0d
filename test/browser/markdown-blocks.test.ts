import MarkdownIt from 'markdown-it';
import { describe, expect, it } from 'vitest';
import { sampleReply } from '../../bench/ui-render.js';
import { SseParser, type SseEvent } from '../../web/src/api/sse.js';
import { BlockSplitter } from '../../web/src/markdown/blocks.js';
import { mathPlugin } from '../../web/src/markdown/math.js';

/** The page's pure parts, without a browser: the block splitter behind incremental rendering, and the SSE parser. */

const md = new MarkdownIt({ html: false, linkify: true }).use(mathPlugin);

/** Feeds `text` in pieces of `step` characters; answers the completed blocks and the final tail. */
function split(text: string, step: number): { blocks: string[]; tail: string; snapshots: string[][] } {
  const splitter = new BlockSplitter();
  const blocks: string[] = [];
  const snapshots: string[][] = [];
  for (let end = step; end < text.length + step; end += step) {
    blocks.push(...splitter.update(text.slice(0, Math.min(end, text.length))));
    snapshots.push([...blocks]);
  }
  return { blocks, tail: splitter.tail, snapshots };
}

describe('BlockSplitter', () => {
  const text = sampleReply();

  it('cuts a streamed reply into blocks that, with the tail, are exactly the text, whatever the delta size', () => {
    for (const step of [1, 3, 17, 256]) {
      const { blocks, tail } = split(text, step);
      expect(blocks.join('') + tail).toBe(text);
      expect(blocks.length).toBeGreaterThan(50);
    }
  });

  it('renders block by block exactly as the whole text renders', () => {
    const { blocks, tail } = split(text, 7);
    expect([...blocks, tail].map((block) => md.render(block)).join('')).toBe(md.render(text));
  });

  it('never ends a block inside a fenced code block or a display-math block', () => {
    const tricky = ['Intro.', '', '```python', 'a = 1', '', 'b = 2', '```', '', '~~~', 'x', '', '```', 'still inside', '~~~', '', '$$', 'x = 1', '', '$$', '', 'End.', ''].join('\n');
    const { blocks, tail } = split(tricky, 1);
    expect(blocks.join('') + tail).toBe(tricky);
    expect(blocks.some((block) => block.includes('a = 1') && block.includes('b = 2'))).toBe(true);
    expect(blocks.some((block) => block.includes('~~~\nx\n\n```\nstill inside\n~~~'))).toBe(true);
    expect([...blocks, tail].map((block) => md.render(block)).join('')).toBe(md.render(tricky));
  });

  it('keeps an indented continuation with its list item', () => {
    const list = '- item one\n\n  more about item one\n\nAfter the list.\n';
    const { blocks, tail } = split(list, 1);
    expect(blocks[0]).toBe('- item one\n\n  more about item one\n\n');
    expect(tail).toBe('After the list.\n');
  });
});

describe('math markup', () => {
  it('marks up TeX for KaTeX and leaves prices alone', () => {
    expect(md.render('Euler: $e^{i\\pi}+1=0$.')).toContain('<span class="math math-inline">e^{i\\pi}+1=0</span>');
    expect(md.render('It costs $5 and $10.')).not.toContain('math');
    expect(md.render('$$\n\\frac{1}{2}\n$$\n')).toContain('<div class="math math-display">\\frac{1}{2}</div>');
    expect(md.render('\\(a<b\\)')).toContain('<span class="math math-inline">a&lt;b</span>');
  });
});

describe('SseParser', () => {
  function parse(chunks: string[]): SseEvent[] {
    const events: SseEvent[] = [];
    const parser = new SseParser((event) => events.push(event));
    for (const chunk of chunks) parser.push(chunk);
    return events;
  }

  it('follows the event-stream rules: CRLF/CR/LF, multi-line data, comments, ids that persist', () => {
    const events = parse(['event: start\r\nid: 0\r\ndata: {"a":1}\r\n\r\n', ': keep-alive\n\n', 'event: delta\rid: 5\rdata: line one\rdata: line two\r\r', 'data:no space\n\n']);
    expect(events).toEqual([
      { event: 'start', data: '{"a":1}', id: '0' },
      { event: 'delta', data: 'line one\nline two', id: '5' },
      { event: 'message', data: 'no space', id: '5' },
    ]);
  });

  it('handles events split anywhere across chunks, a CRLF split between two chunks included', () => {
    const raw = 'event: delta\r\nid: 11\r\ndata: {"text":"héllo wörld"}\r\n\r\nevent: done\r\ndata: {}\r\n\r\n';
    for (let cut = 1; cut < raw.length; cut++) {
      expect(parse([raw.slice(0, cut), raw.slice(cut)])).toEqual([
        { event: 'delta', data: '{"text":"héllo wörld"}', id: '11' },
        { event: 'done', data: '{}', id: '11' },
      ]);
    }
  });
});
