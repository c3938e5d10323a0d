/**
 * What a completed block gets after it is rendered: code blocks get a header
 * with their language and a copy button, then (lazily) syntax highlighting;
 * math gets KaTeX (lazily). The heavy parts load on first use only, so the
 * initial bundle stays small, and a block is enhanced once, when it freezes.
 */

type HighlightModule = typeof import('./highlight.js');
type KatexModule = typeof import('./katex.js');

let highlighter: Promise<HighlightModule> | undefined;
let mathRenderer: Promise<KatexModule> | undefined;

function languageOf(code: Element): string {
  for (const name of code.classList) if (name.startsWith('language-')) return name.slice('language-'.length);
  return '';
}

/** Wraps each `pre > code` in a code block with a header (language, copy button). Synchronous: no layout jump later. */
export function decorateCode(root: HTMLElement): HTMLElement[] {
  const codes: HTMLElement[] = [];
  for (const pre of Array.from(root.querySelectorAll('pre'))) {
    const code = pre.querySelector('code');
    if (!code || pre.parentElement?.classList.contains('code-block')) continue;
    const lang = languageOf(code);
    const wrapper = document.createElement('div');
    wrapper.className = 'code-block';
    const head = document.createElement('div');
    head.className = 'code-head';
    const label = document.createElement('span');
    label.className = 'code-lang';
    label.textContent = lang || 'text';
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.className = 'copy-code';
    copy.dataset['copyCode'] = '';
    copy.textContent = 'Copy';
    copy.setAttribute('aria-label', `Copy ${lang || 'code'} block`);
    head.append(label, copy);
    pre.replaceWith(wrapper);
    wrapper.append(head, pre);
    pre.tabIndex = 0; // scrollable regions must be reachable by keyboard
    codes.push(code);
  }
  return codes;
}

/**
 * Runs `work` in a task of its own once the page is idle (within a second at most). Highlighting changes only
 * colours, never sizes, so it can wait: done at once, it ran inside the frame that drew the block, and a streaming
 * reply's frame that finished a code block went over 50 ms at 4x CPU throttling.
 */
function whenIdle(work: () => void): void {
  if (typeof requestIdleCallback === 'function') requestIdleCallback(work, { timeout: 1000 });
  else setTimeout(work, 0);
}

/** Decorates, then highlights (when the page is idle) and typesets a completed block. */
export function enhance(root: HTMLElement): void {
  const codes = decorateCode(root).filter((code) => languageOf(code) !== '');
  if (codes.length > 0) {
    highlighter ??= import('./highlight.js');
    void highlighter.then((module) => codes.forEach((code) => whenIdle(() => void module.highlightCode(code, languageOf(code)).catch(() => undefined)))).catch(() => undefined);
  }
  const maths = Array.from(root.querySelectorAll<HTMLElement>('.math:not(.math-rendered)'));
  if (maths.length > 0) {
    mathRenderer ??= import('./katex.js');
    void mathRenderer.then((module) => maths.forEach((element) => element.isConnected && module.renderMath(element))).catch(() => undefined);
  }
}
