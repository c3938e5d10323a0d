import type { MarkdownIt, StateBlock, StateInline } from 'markdown-it';

/**
 * Math for markdown-it: `$…$` and `\(…\)` inline, `$$…$$` and `\[…\]` as
 * display math (a block of their own lines, or inline). It only marks the TeX
 * up (`<span class="math math-inline">`, `<div class="math math-display">`,
 * text escaped); KaTeX renders those elements later, lazily (see enhance.ts),
 * so the parser stays small and fast while a reply streams.
 *
 * `$` follows Pandoc's rule so prices are not math: the opening `$` must be
 * followed by a non-space, the closing one preceded by a non-space and not
 * followed by a digit ("$5 and $10" stays text).
 */

const isSpace = (ch: string | undefined): boolean => ch === undefined || /\s/.test(ch);

function mathInline(state: StateInline, silent: boolean): boolean {
  const src = state.src;
  const pos = state.pos;
  const ch = src[pos];
  if (ch === '\\') {
    const open = src[pos + 1];
    if (open !== '(' && open !== '[') return false;
    const close = open === '(' ? '\\)' : '\\]';
    const end = src.indexOf(close, pos + 2);
    if (end < 0 || end === pos + 2) return false;
    if (!silent) {
      const token = state.push(open === '(' ? 'math_inline' : 'math_inline_display', 'span', 0);
      token.content = src.slice(pos + 2, end);
      token.markup = open === '(' ? '\\(' : '\\[';
    }
    state.pos = end + 2;
    return true;
  }
  if (ch !== '$') return false;
  if (src[pos + 1] === '$') {
    const end = src.indexOf('$$', pos + 2);
    if (end < 0 || end === pos + 2) return false;
    if (!silent) {
      const token = state.push('math_inline_display', 'span', 0);
      token.content = src.slice(pos + 2, end);
      token.markup = '$$';
    }
    state.pos = end + 2;
    return true;
  }
  if (isSpace(src[pos + 1])) return false;
  let end = pos + 1;
  for (;;) {
    end = src.indexOf('$', end);
    if (end < 0) return false;
    if (src[end - 1] === '\\') {
      end++;
      continue;
    }
    break;
  }
  if (end === pos + 1 || isSpace(src[end - 1]) || /[0-9]/.test(src[end + 1] ?? '')) return false;
  if (!silent) {
    const token = state.push('math_inline', 'span', 0);
    token.content = src.slice(pos + 1, end);
    token.markup = '$';
  }
  state.pos = end + 1;
  return true;
}

function mathBlock(state: StateBlock, startLine: number, endLine: number, silent: boolean): boolean {
  const start = (state.bMarks[startLine] ?? 0) + (state.tShift[startLine] ?? 0);
  const max = state.eMarks[startLine] ?? 0;
  if ((state.sCount[startLine] ?? 0) - state.blkIndent >= 4) return false;
  const first = state.src.slice(start, max);
  let close: string;
  if (first.startsWith('$$')) close = '$$';
  else if (first.startsWith('\\[')) close = '\\]';
  else return false;
  const rest = first.slice(2);
  let content: string;
  let last = startLine;
  const sameLine = rest.indexOf(close);
  if (sameLine >= 0) {
    if (rest.slice(sameLine + close.length).trim() !== '') return false;
    content = rest.slice(0, sameLine);
  } else {
    const lines = [rest];
    let found = false;
    for (let line = startLine + 1; line < endLine; line++) {
      const lineStart = (state.bMarks[line] ?? 0) + (state.tShift[line] ?? 0);
      const text = state.src.slice(lineStart, state.eMarks[line] ?? 0);
      if ((state.sCount[line] ?? 0) < state.blkIndent) break;
      const at = text.indexOf(close);
      if (at >= 0) {
        if (text.slice(at + close.length).trim() !== '') return false;
        lines.push(text.slice(0, at));
        last = line;
        found = true;
        break;
      }
      lines.push(text);
    }
    if (!found) return false; // not closed (yet, while streaming): plain text until it is
    content = lines.join('\n');
  }
  if (content.trim() === '') return false;
  if (silent) return true;
  state.line = last + 1;
  const token = state.push('math_block', 'div', 0);
  token.block = true;
  token.content = content.trim();
  token.markup = close === '$$' ? '$$' : '\\[';
  token.map = [startLine, state.line];
  return true;
}

export function mathPlugin(md: MarkdownIt): void {
  const escape = md.utils.escapeHtml;
  md.inline.ruler.before('escape', 'math_inline', mathInline);
  md.block.ruler.before('fence', 'math_block', mathBlock, { alt: ['paragraph', 'reference', 'blockquote', 'list'] });
  md.renderer.rules['math_inline'] = (tokens, idx) => `<span class="math math-inline">${escape(tokens[idx]?.content ?? '')}</span>`;
  md.renderer.rules['math_inline_display'] = (tokens, idx) => `<span class="math math-display">${escape(tokens[idx]?.content ?? '')}</span>`;
  md.renderer.rules['math_block'] = (tokens, idx) => `<div class="math math-display">${escape(tokens[idx]?.content ?? '')}</div>\n`;
}
