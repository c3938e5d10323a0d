import { describe, expect, it } from 'vitest';
import type { ConversationRecord, ConversationTree } from '../../src/protocol/conversations.js';
import { beforeAll, afterAll } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { haveChromium, openPage, screenshot, scriptedPageSuite, seriousAxeViolations, until, waitForReplyEnd, conversationIdOf, type PageProbe } from './harness.js';

/** Attachments and the context meter of issue 13, in Chromium against a real server. */

/** A minimal valid PDF (one page, Helvetica) whose text is `sentence`; offsets in the xref are computed, not guessed. */
function pdfWith(sentence: string): Buffer {
  const stream = `BT /F1 18 Tf 72 720 Td (${sentence}) Tj ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
  ];
  let body = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((object, index) => {
    offsets.push(body.length);
    body += `${index + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((offset) => `${String(offset).padStart(10, '0')} 00000 n \n`).join('')}`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

/** A 1×1 PNG. */
const pixel = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

const fileInput = 'form.composer input[type=file]';

/**
 * An expression that is true once the page's IndexedDB holds `count` conversations' draft files: a point to wait
 * for before a reload (the page writes them just after it shows them). Only once the page has opened its store.
 */
const storedDraftSets = (count: number): string =>
  `new Promise((resolve) => { const open = indexedDB.open('parlance-drafts'); open.onerror = () => resolve(false); open.onsuccess = () => { const db = open.result; if (!db.objectStoreNames.contains('files')) { db.close(); resolve(false); return; } const counted = db.transaction('files').objectStore('files').count(); counted.onsuccess = () => { db.close(); resolve(counted.result === ${count}); }; }; })`;

describe.skipIf(!haveChromium)('the chat page, attachments', () => {
  let upstream: FakeUpstream | undefined;
  // Registered before the suite's own: the fake upstream (a model that takes images, as a relay declares) listens
  // first, and the getter hands its address to the server the suite starts.
  beforeAll(async () => {
    upstream = await startFakeUpstream({ models: ['eyes'] });
  });
  afterAll(async () => upstream?.close());
  const suite = scriptedPageSuite({
    scriptedDelayMs: 1,
    get upstreams() {
      return [`fake=${upstream?.url ?? ''}`];
    },
  });

  async function newPage(path = '/'): Promise<PageProbe> {
    const probe = await openPage(suite.session.browser, suite.server.url);
    suite.probes.push(probe);
    await probe.page.goto(`${suite.server.url}${path}`);
    await probe.page.getByLabel('Message', { exact: true }).waitFor();
    return probe;
  }

  async function storedTree(id: string): Promise<ConversationTree> {
    return (await (await fetch(`${suite.server.url}/parlance/api/conversations/${id}`)).json()) as ConversationTree;
  }

  it('attaches a text file and a PDF: the model reads their text, and the message keeps them through a reload', async () => {
    const { page, context } = await newPage();
    const workers: string[] = [];
    page.on('worker', (worker) => workers.push(worker.url()));
    await page.locator(fileInput).setInputFiles([
      { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('The meeting moved to Thursday.\n') },
      { name: 'report.pdf', mimeType: 'application/pdf', buffer: pdfWith('Parlance reads portable documents.') },
    ]);
    const chips = page.locator('.file-chips .file-chip:not(.reading)');
    await until(page, "document.querySelectorAll('.file-chips .file-chip:not(.reading)').length === 2");
    expect(await chips.locator('.file-name').allTextContents()).toEqual(['notes.txt', 'report.pdf']);
    // PDF.js read it on its worker, a file of this build from this origin (no fallback onto the page's thread).
    expect(workers.some((url) => url.startsWith(`${suite.server.url}/assets/pdf.worker`))).toBe(true);
    await screenshot(page, 'attachments-draft');
    expect(await seriousAxeViolations(page)).toEqual([]);
    await page.setViewportSize({ width: 390, height: 760 });
    await screenshot(page, 'attachments-draft-phone');
    await page.setViewportSize({ width: 1280, height: 860 });

    const box = page.getByLabel('Message', { exact: true });
    await box.fill('Summarise these.');
    await box.press('Enter');
    expect(await waitForReplyEnd(page)).toBe('complete');
    // The scripted model echoes what it was shown: both files' text, under their names, then the question.
    const reply = (await page.locator('article.from-assistant .markdown').last().textContent()) ?? '';
    expect(reply).toContain('The meeting moved to Thursday.');
    expect(reply).toContain('Parlance reads portable documents.');
    expect(reply).toContain('report.pdf');
    // The composer is empty of them; the message shows them as chips.
    expect(await page.locator('.file-chips').count()).toBe(0);
    const sent = page.locator('article.from-user .message-files details');
    expect(await sent.locator('.file-name').allTextContents()).toEqual(['notes.txt', 'report.pdf']);

    const id = await conversationIdOf(page);
    const user = (await storedTree(id)).messages.find((message) => message.role === 'user');
    expect(user?.content).toBe('Summarise these.');
    expect(user?.attachments.map((file) => file.type === 'text' && file.text.trim())).toEqual(['The meeting moved to Thursday.', 'Parlance reads portable documents.']);

    await page.reload();
    const kept = page.locator('article.from-user .message-files details');
    await kept.first().waitFor();
    expect(await kept.locator('.file-name').allTextContents()).toEqual(['notes.txt', 'report.pdf']);
    await kept.nth(1).locator('summary').click();
    expect(await kept.nth(1).locator('.file-text').textContent()).toContain('Parlance reads portable documents.');
    await screenshot(page, 'attachments-sent-expanded');
    expect(await seriousAxeViolations(page)).toEqual([]);
    await context.close();
  });

  it("keeps a draft's files through a reload, as its text, each conversation its own", async () => {
    const { page, context } = await newPage();
    const chipNames = (): Promise<string[]> => page.locator('.file-chips .file-chip:not(.reading) .file-name').allTextContents();
    await page.locator(fileInput).setInputFiles([{ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('The meeting moved to Thursday.\n') }]);
    const box = page.getByLabel('Message', { exact: true });
    await box.fill('Summarise this.');
    await until(page, "document.querySelectorAll('.file-chips .file-chip:not(.reading)').length === 1");
    // The files are written to the browser's storage a moment after they show: reload once they are there.
    await until(page, storedDraftSets(1));
    await page.reload();
    await box.waitFor();
    await until(page, "document.querySelectorAll('.file-chips .file-chip:not(.reading)').length === 1");
    expect(await chipNames()).toEqual(['notes.txt']);
    expect(await box.inputValue()).toBe('Summarise this.');
    // What came back is the file itself: the model reads it.
    await box.press('Enter');
    expect(await waitForReplyEnd(page)).toBe('complete');
    expect(await page.locator('article.from-assistant .markdown').last().textContent()).toContain('The meeting moved to Thursday.');
    const id = await conversationIdOf(page);
    // Sent, the files are no longer a draft: not after a reload either.
    await page.reload();
    await page.locator('article.from-user .message-files').waitFor();
    expect(await page.locator('.file-chips').count()).toBe(0);

    // A draft's files belong to its conversation: not shown in another, back when it is opened again.
    await page.locator(fileInput).setInputFiles([{ name: 'later.md', mimeType: 'text/markdown', buffer: Buffer.from('# Later\n') }]);
    await until(page, "document.querySelectorAll('.file-chips .file-chip:not(.reading)').length === 1");
    await until(page, storedDraftSets(1));
    await page.getByRole('button', { name: 'New chat' }).click();
    await until(page, "location.pathname === '/'");
    expect(await page.locator('.file-chips').count()).toBe(0);
    await page.reload();
    await box.waitFor();
    expect(await page.locator('.file-chips').count()).toBe(0);
    await page.goto(`${suite.server.url}/c/${id}`);
    await box.waitFor();
    await until(page, "document.querySelectorAll('.file-chips .file-chip:not(.reading)').length === 1");
    expect(await chipNames()).toEqual(['later.md']);
    await context.close();
  });

  it('says a model without images does not accept them, before sending; a model that takes images gets it', async () => {
    const { page, context } = await newPage();
    await page.locator(fileInput).setInputFiles([{ name: 'dot.png', mimeType: 'image/png', buffer: pixel }]);
    const blocker = page.locator('[data-blocker]');
    await blocker.waitFor();
    expect(await blocker.textContent()).toContain('This model (parlance-scripted) does not accept images');
    expect(await page.getByRole('button', { name: 'Send (Enter)' }).isDisabled()).toBe(true);
    const box = page.getByLabel('Message', { exact: true });
    await box.fill('What is this?');
    await box.press('Enter');
    expect(await page.locator('article.from-user').count()).toBe(0);
    await screenshot(page, 'attachments-image-refused');
    expect(await seriousAxeViolations(page)).toEqual([]);

    // The relay's model declares images: the notice goes, and the image is sent as an image part.
    await page.getByLabel('Model', { exact: true }).selectOption('eyes');
    await until(page, "document.querySelector('[data-blocker]') === null");
    const before = upstream?.generations().length ?? 0;
    await box.press('Enter');
    await waitForReplyEnd(page);
    const sent = upstream?.generations()[before]?.body as { messages: { role: string; content: unknown }[] };
    const content = sent.messages.find((message) => message.role === 'user')?.content as { type: string }[];
    expect(content.map((part) => part.type)).toEqual(['image_url', 'text']);
    await page.locator('article.from-user .message-files img.file-thumb').waitFor();
    await context.close();
  });

  it("shows the server's refusal of an image readably, and gives the files back", async () => {
    // The page believes the conversation's model takes images; the server knows better (its model changed meanwhile).
    const created = await fetch(`${suite.server.url}/parlance/api/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'eyes' }) });
    const conversation = (await created.json()) as ConversationRecord;
    const { page, context } = await newPage(`/c/${conversation.id}`);
    await fetch(`${suite.server.url}/parlance/api/conversations/${conversation.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'parlance-scripted' }) });
    await page.locator(fileInput).setInputFiles([{ name: 'dot.png', mimeType: 'image/png', buffer: pixel }]);
    await page.locator('.file-chips .file-chip:not(.reading)').waitFor();
    const box = page.getByLabel('Message', { exact: true });
    await box.fill('And this?');
    await box.press('Enter');
    const failure = page.getByRole('alert').filter({ hasText: 'does not accept images' });
    await failure.waitFor();
    expect(await failure.textContent()).toContain("The model 'parlance-scripted' does not accept images");
    await until(page, "document.querySelectorAll('.file-chips .file-chip:not(.reading)').length === 1");
    expect((await storedTree(conversation.id)).messages).toEqual([]);
    // Files belong to their conversation's draft: they do not follow the person into another.
    await page.getByRole('button', { name: 'New chat' }).click();
    await until(page, "location.pathname === '/'");
    expect(await page.locator('.file-chips').count()).toBe(0);
    await context.close();
  });

  it('attaches files dropped on the composer and pasted into the message box', async () => {
    const { page, context } = await newPage();
    await page.evaluate(`(() => {
      const dropped = new DataTransfer();
      dropped.items.add(new File(['# Heading\\n\\nSome notes.'], 'readme.md', { type: 'text/markdown' }));
      document.querySelector('form.composer').dispatchEvent(new DragEvent('drop', { dataTransfer: dropped, bubbles: true, cancelable: true }));
      const pasted = new DataTransfer();
      pasted.items.add(new File(['export const answer = 42;'], 'answer.ts', { type: '' }));
      document.querySelector('#composer-input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: pasted, bubbles: true, cancelable: true }));
    })()`);
    await until(page, "document.querySelectorAll('.file-chips .file-chip:not(.reading)').length === 2");
    expect((await page.locator('.file-chips .file-name').allTextContents()).sort()).toEqual(['answer.ts', 'readme.md']);
    // A file pasted is attached, not pasted as text.
    expect(await page.getByLabel('Message', { exact: true }).inputValue()).toBe('');
    await page.getByLabel('Message', { exact: true }).press('Enter');
    expect(await waitForReplyEnd(page)).toBe('complete');
    const reply = (await page.locator('article.from-assistant .markdown').last().textContent()) ?? '';
    expect(reply).toContain('export const answer = 42;');
    expect(reply).toContain('Some notes.');
    await context.close();
  });

  it('refuses files too large to attach, and files that are neither text, PDF nor image', async () => {
    const { page, context } = await newPage();
    await page.locator(fileInput).setInputFiles([
      { name: 'huge.log', mimeType: 'text/plain', buffer: Buffer.alloc(3 * 1024 * 1024, 'a') },
      { name: 'blob.bin', mimeType: 'application/octet-stream', buffer: Buffer.from([0, 159, 146, 150, 0, 1]) },
    ]);
    const refused = page.getByRole('alert').filter({ hasText: 'huge.log' });
    await refused.waitFor();
    await until(page, "document.querySelector('.composer-notices')?.textContent?.includes('blob.bin') === true");
    const text = (await page.locator('.composer-notices').textContent()) ?? '';
    expect(text).toContain('“huge.log” is 3.0 MB; text files of up to 2.0 MB can be attached.');
    expect(text).toContain('“blob.bin” is not a text file, a PDF or an image');
    expect(await page.locator('.file-chips .file-chip:not(.reading)').count()).toBe(0);
    await screenshot(page, 'attachments-too-large');

    // Each under the page's own bound, together over the server's body limit (1 MiB here): not sent, and said why.
    await page.getByRole('button', { name: 'Dismiss' }).click();
    await page.locator(fileInput).setInputFiles([
      { name: 'big.csv', mimeType: 'text/csv', buffer: Buffer.alloc(600_000, 'b') },
      { name: 'more.csv', mimeType: 'text/csv', buffer: Buffer.alloc(600_000, 'c') },
    ]);
    await page.locator('[data-blocker]').waitFor();
    expect(await page.locator('[data-blocker]').textContent()).toContain('this server takes up to 1.0 MB per message');
    expect(await page.getByRole('button', { name: 'Send (Enter)' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Remove big.csv' }).click();
    expect(await page.locator('[data-blocker]').count()).toBe(0);
    await context.close();
  });
});

describe.skipIf(!haveChromium)('the chat page, context meter (tiny GGUF, 1,024 tokens of context)', () => {
  const suite = scriptedPageSuite({ embedded: true, scripted: false });

  it('counts the draft as it is typed, and warns before a send that would not fit', async () => {
    const probe = await openPage(suite.session.browser, suite.server.url);
    suite.probes.push(probe);
    const { page, context } = probe;
    await page.goto(suite.server.url);
    const box = page.getByLabel('Message', { exact: true });
    await box.waitFor();
    // Never more than one count in flight, however fast the typing.
    let inFlight = 0;
    let mostInFlight = 0;
    const settle = (request: { url(): string }): void => {
      if (request.url().endsWith('/parlance/api/tokenize')) inFlight--;
    };
    page.on('request', (request) => {
      if (!request.url().endsWith('/parlance/api/tokenize')) return;
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
    });
    page.on('requestfinished', settle);
    page.on('requestfailed', settle);
    const tokens = async (): Promise<number> => Number(await page.locator('.context-count').getAttribute('data-tokens'));
    await box.pressSequentially('Hello there');
    await page.locator('.context-count').waitFor();
    const first = await tokens();
    expect(first).toBeGreaterThan(0);
    expect(await page.locator('.context-count').textContent()).toMatch(/^\d[\d,]* \/ 1,024 tokens$/);
    await box.pressSequentially(', how many tokens does this sentence take?');
    await until(page, `Number(document.querySelector('.context-count')?.getAttribute('data-tokens')) > ${first}`);
    expect(mostInFlight).toBe(1);
    await screenshot(page, 'context-meter');

    // An image in the draft: the meter says it leaves it out (no engine here can count one), never a silent under-count.
    await page.locator(fileInput).setInputFiles([{ name: 'dot.png', mimeType: 'image/png', buffer: pixel }]);
    await until(page, "document.querySelector('.context-count')?.textContent?.endsWith(' tokens + an image not counted') === true");
    expect(await page.locator('.context-meter').getAttribute('title')).toContain('Images are not counted');
    await screenshot(page, 'context-meter-image');
    await page.getByRole('button', { name: 'Remove dot.png' }).click();
    await until(page, "document.querySelector('.context-count')?.textContent?.includes('not counted') === false");

    // Far past the context: the meter says so, and Enter asks first instead of sending.
    await box.fill('lorem ipsum dolor '.repeat(150));
    await until(page, "document.querySelector('.context-meter')?.getAttribute('data-state') === 'over'");
    await box.press('Enter');
    const warning = page.locator('.overflow-warning');
    await warning.waitFor();
    expect(await warning.textContent()).toContain('reads at most 1,024');
    expect(await page.locator('article.from-user').count()).toBe(0);
    await screenshot(page, 'context-meter-over');
    expect(await seriousAxeViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Keep editing' }).click();
    expect(await warning.count()).toBe(0);
    expect(await box.inputValue()).toContain('lorem ipsum');

    // Sent anyway: the server refuses it, and the page says why (the text is kept).
    await box.press('Enter');
    await page.getByRole('button', { name: 'Send anyway' }).click();
    await page.getByRole('alert').filter({ hasText: 'maximum context length is 1024 tokens' }).waitFor();
    await context.close();
  });
});
