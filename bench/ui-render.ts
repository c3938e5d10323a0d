/**
 * The chat page's rendering benchmark: a 20 KB Markdown reply (code blocks,
 * a table, lists) streamed at 200 tokens/s, in headless Chromium.
 *
 * 1. Harness, both ways in the same run: the page's renderer
 *    (IncrementalMarkdown: completed blocks parsed once, the open block
 *    re-rendered once per animation frame) against the baseline that
 *    re-parses, sanitises and re-inserts the whole text on every token.
 *    Render time = time in those calls plus the layout they force.
 * 2. End to end: a real Parlance (scripted engine, 5 ms per token = 200
 *    tokens/s) streaming the same text into the real chat page; the
 *    browser's long-task observer reports every main-thread task over 50 ms.
 *
 * Run: npm run bench:ui   (needs Debian's chromium; builds what it needs)
 */
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { contentSecurityPolicy } from '../src/http/routes/ui/page.js';
import { launchChromium, openPage, startScriptedServer } from '../test/browser/harness.js';
import { ensureWebBuilt } from '../web/ensure-built.js';

const TOKENS_PER_SECOND = 200;
const root = fileURLToPath(new URL('..', import.meta.url));

interface RunResult {
  readonly mode: 'incremental' | 'naive';
  readonly tokens: number;
  readonly renders: number;
  readonly renderMs: number;
  readonly maxRenderMs: number;
  readonly wallMs: number;
  readonly longTasks: readonly number[];
  readonly chars: number;
}

/** A deterministic ~20 KB reply of the kind models write: prose, lists, a table, code in several languages. */
export function sampleReply(targetBytes = 20_000): string {
  const sections: string[] = [];
  const code = [
    ['ts', 'export async function fetchAll(urls: string[]): Promise<Response[]> {\n  const results: Response[] = [];\n  for (const url of urls) {\n    const response = await fetch(url, { headers: { accept: "application/json" } });\n    if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);\n    results.push(response);\n  }\n  return results;\n}\n\nconst limit = 10; // at most ten at once\nexport const pending = new Map<string, Promise<Response>>();'],
    ['python', 'def merge_sort(values):\n    """Sorts a list; stable; O(n log n)."""\n    if len(values) <= 1:\n        return values\n    middle = len(values) // 2\n    left = merge_sort(values[:middle])\n    right = merge_sort(values[middle:])\n    merged = []\n    while left and right:\n        merged.append(left.pop(0) if left[0] <= right[0] else right.pop(0))\n    return merged + left + right\n\nprint(merge_sort([5, 3, 9, 1, 4]))'],
    ['bash', '#!/usr/bin/env bash\nset -euo pipefail\nfor file in logs/*.log; do\n  count=$(grep -c "ERROR" "$file" || true)\n  echo "$file: $count errors"\ndone | sort -t: -k2 -n -r | head -n 5'],
    ['json', '{\n  "name": "parlance",\n  "version": "0.1.0",\n  "scripts": { "start": "node dist/src/cli.js serve", "test": "vitest run" },\n  "engines": { "node": ">=20.19" },\n  "private": true\n}'],
  ] as const;
  let i = 0;
  while (sections.join('\n\n').length < targetBytes) {
    const [lang, body] = code[i % code.length] ?? code[0];
    sections.push(
      `## ${i + 1}. Step ${i + 1}: ${['Setting up', 'Writing the code', 'Testing it', 'Shipping'][i % 4]}`,
      `This part explains **why** the approach works, with \`inline code\` such as \`Array.prototype.map\` and a [reference](https://example.com/docs/${i}). ` +
        'The idea is simple: keep the work per step small, measure before changing anything, and write down what was learned so the next person does not repeat it.',
      ['- Read the input once, in order.', '- Keep *one* source of truth for the state.', '- Fail early, with a message that says what to do.', '  - nested detail: the message names the option and its variable', '- Clean up in reverse order of set-up.'].join('\n'),
      ['1. Install the dependencies.', '2. Run the tests (`npm test`).', '3. Start the server and open the page.'].join('\n'),
      `\`\`\`${lang}\n${body}\n\`\`\``,
      i % 3 === 0
        ? ['| Approach | Time (ms) | Memory (MB) | Notes |', '| :-- | --: | --: | :-- |', ...Array.from({ length: 8 }, (_, row) => `| variant ${row + 1} | ${(row * 13.7 + i).toFixed(1)} | ${(row * 2.5 + 40).toFixed(1)} | ${row % 2 ? 'stable' : 'needs **care**'} |`)].join('\n')
        : '> A note in passing: measure twice, cut once. Numbers beat intuition whenever they are cheap to get.',
    );
    i++;
  }
  return `${sections.join('\n\n')}\n`;
}

const mime: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.woff2': 'font/woff2', '.woff': 'font/woff', '.ttf': 'font/ttf' };

/** Serves a folder with the chat page's own CSP, so the harness runs under the same rules. */
function serveStatic(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const file = join(dir, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': mime[extname(file)] ?? 'application/octet-stream', 'content-security-policy': contentSecurityPolicy });
    createReadStream(file).pipe(response);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    resolve({ server, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` });
  }));
}

const fmt = (ms: number): string => `${ms.toFixed(0)} ms`;
const maxOf = (values: readonly number[]): number => values.reduce((max, value) => Math.max(max, value), 0);

async function main(): Promise<void> {
  const text = sampleReply();
  const outDir = await mkdtemp(join(tmpdir(), 'parlance-bench-ui-'));
  await build({ configFile: false, root: join(root, 'web', 'bench'), base: './', logLevel: 'warn', build: { outDir, emptyOutDir: true, assetsInlineLimit: 0, modulePreload: { polyfill: false } } });
  await ensureWebBuilt();
  const harness = await serveStatic(outDir);
  const session = await launchChromium();
  const lines: string[] = [];
  const log = (line: string): void => {
    lines.push(line);
    console.log(line);
  };
  try {
    log(`reply: ${(Buffer.byteLength(text) / 1024).toFixed(1)} KiB of Markdown, ${text.match(/\s*\S+|\s+$/g)?.length ?? 0} tokens, streamed at ${TOKENS_PER_SECOND} tokens/s; Chromium ${session.browser.version()}`);

    // 1. Harness: both renderers, same text, same pacing, same page.
    const probe = await openPage(session.browser, harness.url);
    await probe.page.goto(`${harness.url}/`);
    const results: RunResult[] = [];
    for (const mode of ['incremental', 'naive'] as const) {
      const result = await probe.page.evaluate<RunResult>(`window.parlanceBench.run(${JSON.stringify(mode)}, ${JSON.stringify(text)}, ${TOKENS_PER_SECOND})`);
      results.push(result);
      log(
        `harness ${mode.padEnd(11)}: render ${fmt(result.renderMs)} in ${result.renders} updates (longest ${result.maxRenderMs.toFixed(1)} ms), wall ${fmt(result.wallMs)}, ` +
          `long tasks ${result.longTasks.length} (max ${fmt(maxOf(result.longTasks))}), ${result.chars} chars shown`,
      );
    }
    const [incremental, naive] = results;
    if (!incremental || !naive) throw new Error('missing results');
    const ratio = incremental.renderMs / naive.renderMs;
    log(`ratio incremental/naive render time: ${ratio.toFixed(3)} (target ≤ 0.1)`);
    await probe.context.close();

    // 2. End to end: the real page, a real server, the scripted engine at 200 tokens/s.
    const server = await startScriptedServer({ scriptedDelayMs: 1000 / TOKENS_PER_SECOND });
    try {
      const app = await openPage(session.browser, server.url);
      await app.page.addInitScript({ content: "window.__longTasks = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longTasks.push([e.startTime, e.duration]); }).observe({ type: 'longtask', buffered: true });" });
      await app.page.goto(server.url);
      const box = app.page.getByLabel('Message', { exact: true });
      await box.fill(text);
      await app.page.evaluate('window.__longTasks.length = 0');
      const sentAt = await app.page.evaluate<number>('performance.now()');
      const t0 = Date.now();
      await box.press('Enter');
      const reply = app.page.locator('article.from-assistant').last();
      await reply.waitFor();
      for (;;) {
        const status = await reply.getAttribute('data-status');
        if (status && status !== 'streaming' && (await reply.getAttribute('aria-busy')) === 'false') break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const wall = Date.now() - t0;
      const entries = await app.page.evaluate<[number, number][]>('window.__longTasks');
      const tasks = entries.map(([, duration]) => duration);
      const shown = ((await reply.locator('.markdown').textContent()) ?? '').length;
      const when = entries.map(([start, duration]) => `${fmt(duration)} at +${((start - sentAt) / 1000).toFixed(1)} s`).join(', ');
      log(`end to end (chat page): ${fmt(wall)} to stream and render, long tasks ${tasks.length} (max ${fmt(maxOf(tasks))})${when ? ` [${when}]` : ''}, ${shown} chars shown`);
      await app.context.close();
    } finally {
      await server.stop();
    }
    const ok = ratio <= 0.1 && maxOf(incremental.longTasks) <= 50;
    log(ok ? 'PASS: no task over 50 ms in the page renderer, and render time ≤ 0.1× the re-parse baseline' : 'FAIL: see the figures above');
    if (!ok) process.exitCode = 1;
  } finally {
    await session.close();
    harness.server.close();
    await rm(outDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
