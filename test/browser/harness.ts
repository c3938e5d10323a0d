import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import axe from 'axe-core';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import type { OptionKey } from '../../src/config/schema.js';
import { ensureWebBuilt } from '../../web/ensure-built.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';

/** Debian's Chromium (`apt-get install -y chromium`); playwright's own browser downloads are never used. */
export const chromiumPath = process.env['PARLANCE_CHROMIUM'] ?? '/usr/bin/chromium';

/**
 * Whether the browser suites can run. Without Chromium they are skipped on a
 * developer's machine, but on CI (`CI` set) they run and fail: a missing
 * browser must never pass silently.
 */
export const haveChromium = existsSync(chromiumPath) || Boolean(process.env['CI']);

/** Screenshots for people to look at: test-artifacts/ (ignored by git). */
export const artifactsDir = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

export interface BrowserSession {
  readonly browser: Browser;
  close(): Promise<void>;
}

/**
 * Launches headless Chromium. playwright-core gives every launch a fresh
 * profile (`--user-data-dir` in a new temporary folder, removed on close); it
 * refuses the flag from callers, so it is not repeated here.
 */
export async function launchChromium(): Promise<BrowserSession> {
  if (!existsSync(chromiumPath)) throw new Error(`Chromium is not installed at ${chromiumPath}: apt-get install -y chromium (see .ci/run)`);
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return { browser, close: () => browser.close() };
}

/** A Parlance serving the scripted echo model (deterministic text), without loading llama.cpp unless asked. */
export function startScriptedServer(overrides: Partial<Record<OptionKey, unknown>> = {}): Promise<TestServer> {
  return startTestServer({ embedded: false, scripted: true, scriptedDelayMs: 20, ...overrides });
}

/** A describe block's scripted server and Chromium; pages opened for it go in `probes`. */
export interface PageSuite {
  readonly server: TestServer;
  readonly session: BrowserSession;
  readonly probes: PageProbe[];
}

/**
 * Starts a scripted server and Chromium before a describe block's tests and stops them after, then checks that
 * nothing any page in `probes` did tripped its Content-Security-Policy, threw, or reached another origin.
 */
export function scriptedPageSuite(overrides: Partial<Record<OptionKey, unknown>> = {}): PageSuite {
  let server: TestServer | undefined;
  let session: BrowserSession | undefined;
  const probes: PageProbe[] = [];
  beforeAll(async () => {
    await ensureWebBuilt();
    server = await startScriptedServer(overrides);
    session = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await session?.close();
    await server?.stop();
    for (const probe of probes) {
      expect(probe.cspViolations).toEqual([]);
      expect(probe.errors).toEqual([]);
      expect(probe.foreignRequests).toEqual([]);
    }
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the page suite has not started (use it inside its tests)');
    return value;
  };
  return {
    get server() {
      return started(server);
    },
    get session() {
      return started(session);
    },
    probes,
  };
}

export interface PageProbe {
  readonly page: Page;
  readonly context: BrowserContext;
  /** CSP violations the page reported. */
  readonly cspViolations: string[];
  /** Uncaught errors and console errors. */
  readonly errors: string[];
  /** Requests to any origin other than the server's. */
  readonly foreignRequests: string[];
}

/**
 * A fresh context and page on `baseUrl`. Requests to other origins are
 * counted and aborted (the tests' network is the server, nothing else), and
 * CSP violations and page errors are collected.
 */
export async function openPage(browser: Browser, baseUrl: string, options: BrowserContextOptions = {}): Promise<PageProbe> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, ...options });
  const origin = new URL(baseUrl).origin;
  const foreignRequests: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    foreignRequests.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const cspViolations: string[] = [];
  const errors: string[] = [];
  await page.exposeFunction('__reportCsp', (text: string) => cspViolations.push(text));
  await page.addInitScript({
    content: "document.addEventListener('securitypolicyviolation', (e) => window.__reportCsp(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));",
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    // Chromium logs every non-2xx response as a console error; the tests that cause those check them directly.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(`console: ${message.text()}`);
  });
  return { page, context, cspViolations, errors, foreignRequests };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(artifactsDir, { recursive: true });
  await page.screenshot({ path: join(artifactsDir, `${name}.png`) });
}

/** Types a message into the composer and sends it with Enter. */
export async function sendMessage(page: Page, text: string): Promise<void> {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

/** The text of the last assistant reply on the page. */
export async function lastReplyText(page: Page): Promise<string> {
  return ((await page.locator('article.from-assistant .markdown').last().textContent()) ?? '').trim();
}

/**
 * Polls a JavaScript expression in the page until it is truthy. (Playwright's
 * `waitForFunction` evaluates its predicate with `eval`, which the page's CSP
 * rightly forbids; `evaluate` goes through the DevTools protocol instead.)
 */
export async function until(page: Page, expression: string, timeout = 15_000): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate<boolean>(expression)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${expression}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Waits until the last reply on the page has ended (complete, stopped or failed). */
export async function waitForReplyEnd(page: Page, timeout = 20_000): Promise<string> {
  const last = page.locator('article.from-assistant').last();
  await last.waitFor({ timeout });
  await until(
    page,
    "(() => { const all = document.querySelectorAll('article.from-assistant'); const last = all[all.length - 1]; return !!last && !last.classList.contains('pending') && last.getAttribute('data-status') !== 'streaming' && last.getAttribute('aria-busy') === 'false'; })()",
    timeout,
  );
  return (await last.getAttribute('data-status')) ?? '';
}

/** The conversation id in the page's URL (`/c/:id`). */
export async function conversationIdOf(page: Page): Promise<string> {
  const match = /\/c\/([^/?#]+)/.exec(page.url());
  if (!match?.[1]) throw new Error(`no conversation in the URL ${page.url()}`);
  return decodeURIComponent(match[1]);
}

/** Runs axe-core in the page (evaluated over the DevTools protocol: the page's CSP forbids injected scripts, rightly). */
export async function axeViolations(page: Page, rules?: readonly string[]): Promise<{ id: string; impact: string | null; nodes: string[] }[]> {
  await page.evaluate(axe.source);
  const options = rules ? JSON.stringify({ runOnly: { type: 'rule', values: rules } }) : '{}';
  return await page.evaluate<{ id: string; impact: string | null; nodes: string[] }[]>(
    `axe.run(document, ${options}).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.html.slice(0, 160)) })))`,
  );
}

/** The serious and critical violations axe finds in the page as it is now. */
export async function seriousAxeViolations(page: Page): Promise<{ id: string; impact: string | null; nodes: string[] }[]> {
  return (await axeViolations(page)).filter((violation) => violation.impact === 'serious' || violation.impact === 'critical');
}
