import hljs from 'highlight.js/lib/core';
import type { LanguageFn } from 'highlight.js';

/**
 * Syntax highlighting, loaded on first use (this module is a lazy chunk), with
 * each language a chunk of its own, fetched the first time a reply uses it.
 * highlight.js escapes the code it wraps in `<span class="hljs-…">`, so its
 * output is text plus class names only.
 */

type Loader = () => Promise<{ default: LanguageFn }>;

const loaders: Record<string, Loader> = {
  bash: () => import('highlight.js/lib/languages/bash'),
  c: () => import('highlight.js/lib/languages/c'),
  cpp: () => import('highlight.js/lib/languages/cpp'),
  csharp: () => import('highlight.js/lib/languages/csharp'),
  css: () => import('highlight.js/lib/languages/css'),
  diff: () => import('highlight.js/lib/languages/diff'),
  dockerfile: () => import('highlight.js/lib/languages/dockerfile'),
  go: () => import('highlight.js/lib/languages/go'),
  java: () => import('highlight.js/lib/languages/java'),
  javascript: () => import('highlight.js/lib/languages/javascript'),
  json: () => import('highlight.js/lib/languages/json'),
  kotlin: () => import('highlight.js/lib/languages/kotlin'),
  markdown: () => import('highlight.js/lib/languages/markdown'),
  php: () => import('highlight.js/lib/languages/php'),
  python: () => import('highlight.js/lib/languages/python'),
  ruby: () => import('highlight.js/lib/languages/ruby'),
  rust: () => import('highlight.js/lib/languages/rust'),
  shell: () => import('highlight.js/lib/languages/shell'),
  sql: () => import('highlight.js/lib/languages/sql'),
  swift: () => import('highlight.js/lib/languages/swift'),
  typescript: () => import('highlight.js/lib/languages/typescript'),
  xml: () => import('highlight.js/lib/languages/xml'),
  yaml: () => import('highlight.js/lib/languages/yaml'),
};

const aliases: Record<string, string> = {
  js: 'javascript', jsx: 'javascript', mjs: 'javascript', cjs: 'javascript', node: 'javascript',
  ts: 'typescript', tsx: 'typescript', py: 'python', python3: 'python', sh: 'bash', zsh: 'bash', console: 'shell',
  html: 'xml', svg: 'xml', xhtml: 'xml', yml: 'yaml', md: 'markdown', rs: 'rust', golang: 'go', 'c++': 'cpp', cc: 'cpp', h: 'c', hpp: 'cpp',
  cs: 'csharp', 'c#': 'csharp', kt: 'kotlin', rb: 'ruby', docker: 'dockerfile', patch: 'diff', postgres: 'sql', postgresql: 'sql', mysql: 'sql', sqlite: 'sql', jsonc: 'json',
};

const loading = new Map<string, Promise<boolean>>();

export function languageName(lang: string): string | undefined {
  const name = lang.toLowerCase();
  const resolved = aliases[name] ?? name;
  return resolved in loaders ? resolved : undefined;
}

function load(name: string): Promise<boolean> {
  let promise = loading.get(name);
  if (!promise) {
    const loader = loaders[name];
    promise = loader
      ? loader().then(
          (module) => {
            hljs.registerLanguage(name, module.default);
            return true;
          },
          () => false,
        )
      : Promise.resolve(false);
    loading.set(name, promise);
  }
  return promise;
}

/** Highlights one `<code>` element in place, if its language is one we know. */
export async function highlightCode(code: HTMLElement, lang: string): Promise<void> {
  const name = languageName(lang);
  if (!name || !(await load(name)) || !code.isConnected) return;
  const text = code.textContent ?? '';
  const result = hljs.highlight(text, { language: name, ignoreIllegals: true });
  code.innerHTML = result.value;
  code.classList.add('hljs');
}
