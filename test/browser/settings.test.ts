import axe from 'axe-core';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { ConversationTree } from '../../src/protocol/conversations.js';
import type { GlobalSettings, PresetList } from '../../src/protocol/settings.js';
import { conversationIdOf, haveChromium, lastReplyText, openPage, screenshot, scriptedPageSuite, sendMessage, waitForReplyEnd } from './harness.js';

/** Settings that persist: global defaults, a conversation's overrides and presets, kept on the server and found again after a reload. */

/** Runs axe-core in the page (evaluated over the DevTools protocol: the page's CSP forbids injected scripts). */
async function seriousViolations(page: Page): Promise<{ id: string; impact: string | null; nodes: string[] }[]> {
  await page.evaluate(axe.source);
  const found = await page.evaluate<{ id: string; impact: string | null; nodes: string[] }[]>(
    `axe.run(document).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.html.slice(0, 160)) })))`,
  );
  return found.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical');
}

describe.skipIf(!haveChromium)('the chat page, settings that persist', () => {
  const suite = scriptedPageSuite({ scriptedDelayMs: 1 });
  const probes = suite.probes;

  async function api<T>(path: string): Promise<T> {
    return (await (await fetch(`${suite.server.url}/parlance/api${path}`)).json()) as T;
  }

  async function openSettings(page: Page): Promise<void> {
    await page.getByRole('button', { name: 'Conversation settings' }).click();
    await page.locator('dialog.settings-dialog[open]').waitFor();
  }

  async function saveSettings(page: Page): Promise<void> {
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.locator('dialog.settings-dialog[open]').waitFor({ state: 'detached' }).catch(() => page.locator('dialog.settings-dialog').waitFor({ state: 'hidden' }));
  }

  it('keeps a default, a conversation override and a preset on the server, and shows them after a reload', async () => {
    const probe = await openPage(suite.session.browser, suite.server.url);
    probes.push(probe);
    const { page } = probe;
    await page.goto(suite.server.url);
    await page.getByLabel('Message', { exact: true }).waitFor();

    // A global default: every conversation's replies stop at 4 tokens.
    await openSettings(page);
    await page.getByRole('tab', { name: 'Global defaults' }).click();
    await page.locator('#defaults-maxTokens').waitFor();
    await page.locator('#defaults-temperature').fill('0.6');
    await page.locator('#defaults-maxTokens').fill('4');
    await saveSettings(page);
    expect(await api<GlobalSettings>('/settings')).toEqual({ defaults: { temperature: 0.6, maxTokens: 4 } });
    await sendMessage(page, 'one two three four five six seven');
    expect(await waitForReplyEnd(page)).toBe('complete');
    expect(await lastReplyText(page)).toBe('one two three four');
    const id = await conversationIdOf(page);

    // This conversation's override, over the default the field shows as its placeholder.
    await openSettings(page);
    const ownMax = page.getByLabel('Max tokens');
    expect(await ownMax.getAttribute('placeholder')).toBe('default 4');
    await ownMax.fill('2');
    // A setting the model cannot honour is refused at its field, not dropped.
    await page.getByLabel('Top K').fill('40');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    const refusal = page.locator('#settings-topK-error');
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain('does not support topK');
    expect(await page.getByLabel('Top K').getAttribute('aria-invalid')).toBe('true');
    await screenshot(page, 'settings-refused');
    await page.getByLabel('Top K').fill('');
    await saveSettings(page);
    expect((await api<ConversationTree>(`/conversations/${id}`)).conversation.settings).toEqual({ maxTokens: 2 });

    // A preset from this conversation's settings, renamed.
    await openSettings(page);
    await page.getByRole('tab', { name: 'Presets' }).click();
    await page.getByLabel("New preset from this conversation's system prompt and settings").fill('Terse');
    await page.getByRole('button', { name: 'Add preset' }).click();
    await page.getByRole('status').getByText('Added “Terse”.').waitFor();
    await page.getByRole('button', { name: 'Rename Terse' }).click();
    await page.getByLabel('New name for Terse').fill('Very terse');
    await page.getByRole('button', { name: 'Rename', exact: true }).click();
    await page.getByRole('list', { name: 'Presets' }).getByText('Very terse').waitFor();
    expect((await api<PresetList>('/presets')).presets).toMatchObject([{ name: 'Very terse', settings: { maxTokens: 2 } }]);
    await page.getByRole('button', { name: 'Cancel' }).click();

    // After a reload every one of them is still there, read from the server.
    await page.reload();
    await page.getByLabel('Message', { exact: true }).waitFor();
    await openSettings(page);
    expect(await page.getByLabel('Max tokens').inputValue()).toBe('2');
    await screenshot(page, 'settings-conversation');
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByRole('tab', { name: 'Global defaults' }).click();
    expect(await page.locator('#defaults-maxTokens').inputValue()).toBe('4');
    expect(await page.locator('#defaults-temperature').inputValue()).toBe('0.6');
    await screenshot(page, 'settings-defaults');
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByRole('tab', { name: 'Presets' }).click();
    await page.getByRole('list', { name: 'Presets' }).getByText('Very terse').waitFor();
    await screenshot(page, 'settings-presets');
    expect(await seriousViolations(page)).toEqual([]);
    // On a phone the dialog fits the width and scrolls down, nothing cut at the side.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('tab', { name: 'This conversation' }).click();
    await screenshot(page, 'settings-phone');
    expect(await page.evaluate("(() => { const d = document.querySelector('dialog.settings-dialog'); return d.scrollWidth <= d.clientWidth && d.getBoundingClientRect().right <= innerWidth; })()")).toBe(true);
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.getByRole('tab', { name: 'Presets' }).click();
    // The tabs follow the arrow keys.
    await page.getByRole('tab', { name: 'Presets' }).press('ArrowLeft');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Global defaults');
    await page.keyboard.press('Escape');

    // A new chat from the preset: its settings fill the form, and its first reply uses them.
    await page.getByRole('button', { name: /new chat/i }).first().click();
    await openSettings(page);
    await page.getByLabel('Fill from a preset').selectOption({ label: 'Very terse' });
    expect(await page.getByLabel('Max tokens').inputValue()).toBe('2');
    await saveSettings(page);
    await sendMessage(page, 'alpha beta gamma delta');
    expect(await waitForReplyEnd(page)).toBe('complete');
    expect(await lastReplyText(page)).toBe('alpha beta');
    expect(probe.errors).toEqual([]);
    expect(probe.cspViolations).toEqual([]);
  });
});
