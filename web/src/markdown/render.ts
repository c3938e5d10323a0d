import DOMPurify from 'dompurify';
import MarkdownIt from 'markdown-it';
import { mathPlugin } from './math.js';

/**
 * Markdown → sanitised DOM. Model output is untrusted, so there are two
 * independent walls:
 *
 * 1. markdown-it with `html: false`: raw HTML in the text is escaped, not
 *    passed through, and its link validator refuses `javascript:`, `vbscript:`,
 *    `file:` and non-image `data:` URLs.
 * 2. DOMPurify over markdown-it's output, with an allow-list of the tags and
 *    attributes markdown produces and nothing else: no `style`, no event
 *    handlers, no `iframe`/`svg`/`object`/`form`; links must be http(s),
 *    mailto or relative, and always open a new tab with no referrer or opener.
 *
 * Images are never loaded automatically (a URL can carry data out): a
 * Markdown image becomes a link that names its host, and opens only if the
 * person clicks it. `data:` raster images, which fetch nothing, are shown.
 */

const md = new MarkdownIt({ html: false, linkify: true, breaks: false, typographer: false });
md.use(mathPlugin);

const escape = md.utils.escapeHtml;
const inlineDataImage = /^data:image\/(?:png|gif|jpe?g|webp);base64,[a-z0-9+/=\s]+$/i;
const safeProtocols = new Set(['http:', 'https:', 'mailto:']);

/** A link may go to http(s) or mailto, judged the way the browser will resolve it (tabs, newlines and case included). */
function isSafeHref(href: string): boolean {
  try {
    return safeProtocols.has(new URL(href, window.location.href).protocol);
  } catch {
    return false;
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url, window.location.href).host || url;
  } catch {
    return url;
  }
}

md.renderer.rules.image = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  if (!token) return '';
  const src = String(token.attrGet('src') ?? '');
  const alt = self.renderInlineAsText(token.children ?? [], options, env);
  if (inlineDataImage.test(src)) return `<img src="${escape(src)}" alt="${escape(alt)}">`;
  const label = alt.trim() || 'image';
  return (
    `<a class="image-link" href="${escape(src)}" title="Image not loaded automatically: open it in a new tab">` +
    `<span class="image-icon" aria-hidden="true">▧</span> ${escape(label)} <span class="image-host">(image from ${escape(hostOf(src))})</span></a>`
  );
};

// Table alignment as classes: markdown-it writes `style="text-align:…"`, which the page's CSP (no inline styles) would block.
md.core.ruler.push('align_classes', (state) => {
  for (const token of state.tokens) {
    if (token.type !== 'th_open' && token.type !== 'td_open') continue;
    const style = String(token.attrGet('style') ?? '');
    if (!style) continue;
    const match = /text-align:\s*(left|right|center)/.exec(style);
    token.attrs = (token.attrs ?? []).filter(([name]) => name !== 'style');
    if (match?.[1]) token.attrJoin('class', `align-${match[1]}`);
  }
});

// GFM task lists: a list item that starts with `[ ]` or `[x]` shows a box (a glyph, not a form control:
// model output gets no inputs) and says for screen readers whether it is done.
const taskMarker = /^\[([ xX])\][ \t]+/;
md.core.ruler.push('task_lists', (state) => {
  const tokens = state.tokens;
  for (let i = 2; i < tokens.length; i++) {
    const inline = tokens[i];
    if (inline?.type !== 'inline' || tokens[i - 1]?.type !== 'paragraph_open' || tokens[i - 2]?.type !== 'list_item_open') continue;
    const match = taskMarker.exec(inline.content);
    const first = inline.children?.[0];
    if (!match || first?.type !== 'text' || !taskMarker.test(first.content)) continue;
    const done = match[1] !== ' ';
    first.content = first.content.replace(taskMarker, '');
    const box = new state.Token('task_box', '', 0);
    box.meta = { done };
    inline.children?.unshift(box);
    tokens[i - 2]?.attrJoin('class', done ? 'task-item done' : 'task-item');
    tokens.findLast((token, at) => at < i - 2 && token.type.endsWith('_list_open') && token.level === (tokens[i - 2]?.level ?? 0) - 1)?.attrJoin('class', 'task-list');
  }
});
md.renderer.rules['task_box'] = (tokens, idx) => {
  const done = (tokens[idx]?.meta as { done?: boolean } | undefined)?.done === true;
  return `<span class="task-box" aria-hidden="true">${done ? '☑' : '☐'}</span><span class="visually-hidden">${done ? 'Done: ' : 'To do: '}</span>`;
};

const ALLOWED_TAGS = [
  'a', 'b', 'blockquote', 'br', 'code', 'del', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'img', 'li', 'ol', 'p', 'pre',
  's', 'span', 'strong', 'sub', 'sup', 'table', 'tbody', 'td', 'th', 'thead', 'tr', 'ul',
];
const ALLOWED_ATTR = ['href', 'title', 'class', 'start', 'alt', 'src', 'target', 'rel'];

const purify = DOMPurify(window);
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName === 'A') {
    const href = node.getAttribute('href');
    if (href !== null && !isSafeHref(href)) node.removeAttribute('href');
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  } else if (node.nodeName === 'IMG') {
    const src = node.getAttribute('src') ?? '';
    if (!inlineDataImage.test(src)) node.removeAttribute('src');
  }
});

const purifyConfig = {
  ALLOWED_TAGS,
  ALLOWED_ATTR,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  // Our own hook checks URLs (above); this keeps DOMPurify's check compatible with it.
  ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|data:image\/(?:png|gif|jpe?g|webp);|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i,
  RETURN_DOM_FRAGMENT: true as const,
};
// Parsed once: DOMPurify otherwise rebuilds its allow-lists from the config on every call, a tenth of what
// re-rendering a streaming reply's open block costs. With a config set, the one passed to `sanitize` below
// only picks the return type.
purify.setConfig(purifyConfig);

/** Markdown source → HTML string, unsanitised (markdown-it's output). Exposed for benchmarks and tests. */
export function markdownToHtml(source: string): string {
  return md.render(source);
}

/** Any HTML → a sanitised fragment, ready to insert. */
export function sanitize(html: string): DocumentFragment {
  return purify.sanitize(html, purifyConfig);
}

/** Markdown source → a sanitised DOM fragment. */
export function renderMarkdown(source: string): DocumentFragment {
  return sanitize(md.render(source));
}
