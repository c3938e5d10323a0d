/**
 * Settings kept on the server: global defaults, a conversation's overrides, presets. Through `fetch` against
 * the real server with the scripted engine, which echoes the user's message word by word and honours max
 * tokens, stop strings and seeds (it has no top-k: what a model cannot honour is refused, naming the field).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationRecord, ConversationTree, ReplyDone } from '../../src/protocol/conversations.js';
import type { ConversationExport } from '../../src/store/contract.js';
import type { GlobalSettings, PresetList, PresetRecord } from '../../src/protocol/settings.js';
import { parseSse, startTestServer, type TestServer } from '../fixtures/server.js';

let server: TestServer;
const base = '/parlance/api';

beforeAll(async () => {
  server = await startTestServer({ embedded: false, scripted: true });
});
afterAll(async () => server.stop());
afterEach(async () => {
  await api('PUT', '/settings', { defaults: {} });
});

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.url}${base}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

interface ErrorBody {
  error: { code: string; param: string | null; message: string };
}

async function conversation(body: Record<string, unknown> = {}): Promise<ConversationRecord> {
  const created = await api<ConversationRecord>('POST', '/conversations', body);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}

/** Sends a message and reads the reply to its end. */
async function reply(conversationId: string, content: string): Promise<ReplyDone['message']> {
  const response = await fetch(`${server.url}${base}/conversations/${conversationId}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ content }),
  });
  expect(response.status).toBe(200);
  const done = parseSse(await response.text()).find((event) => event.event === 'done');
  return (JSON.parse(done?.data ?? 'null') as ReplyDone).message;
}

const words = 'one two three four five six seven eight';

describe('global defaults', () => {
  it('start empty, are kept as given, and apply to a reply of a conversation that sets nothing', async () => {
    expect((await api<GlobalSettings>('GET', '/settings')).body).toEqual({ defaults: {} });
    const put = await api<GlobalSettings>('PUT', '/settings', { defaults: { maxTokens: 3, temperature: 0.4 } });
    expect(put).toEqual({ status: 200, body: { defaults: { maxTokens: 3, temperature: 0.4 } } });
    expect((await api<GlobalSettings>('GET', '/settings')).body).toEqual({ defaults: { maxTokens: 3, temperature: 0.4 } });

    const plain = await conversation();
    expect(await reply(plain.id, words)).toMatchObject({ content: 'one two three', finishReason: 'length' });
    // Only under Parlance's own prefix: /api is Ollama's (docs/decisions/api-prefix.md), and answers in its shape.
    const ollama = await fetch(`${server.url}/api/settings`);
    expect(ollama.status).toBe(404);
    expect(Object.keys((await ollama.json()) as object)).toEqual(['error']);
  });

  it("lose to the conversation's own setting, field by field", async () => {
    await api('PUT', '/settings', { defaults: { maxTokens: 3, stop: [' six'] } });
    const own = await conversation({ settings: { maxTokens: 6 } });
    // maxTokens is the conversation's (6, not 3); stop still comes from the defaults.
    expect(await reply(own.id, words)).toMatchObject({ content: 'one two three four five', finishReason: 'stop' });
  });

  it('are refused out of range with 400 naming the field, and left as they were', async () => {
    await api('PUT', '/settings', { defaults: { seed: 7 } });
    for (const [defaults, param] of [
      [{ temperature: 2.5 }, 'defaults.temperature'],
      [{ topK: 1.5 }, 'defaults.topK'],
      [{ minP: -0.1 }, 'defaults.minP'],
      [{ presencePenalty: 3 }, 'defaults.presencePenalty'],
      [{ repeatPenalty: 0 }, 'defaults.repeatPenalty'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'defaults.stop'],
      [{ colour: 'red' }, 'defaults'],
    ] as const) {
      const put = await api<ErrorBody>('PUT', '/settings', { defaults });
      expect(put.status, param).toBe(400);
      expect(put.body.error.param, JSON.stringify(defaults)).toBe(param);
    }
    expect((await api<GlobalSettings>('GET', '/settings')).body).toEqual({ defaults: { seed: 7 } });
  });

  it("refuse a reply whose model cannot honour a default, naming it, and write nothing", async () => {
    // Defaults are for every model: top-k is taken here, and refused where a reply's model lacks it.
    expect((await api('PUT', '/settings', { defaults: { topK: 20 } })).status).toBe(200);
    const plain = await conversation();
    const response = await fetch(`${server.url}${base}/conversations/${plain.id}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ content: words }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as ErrorBody;
    expect(body.error).toMatchObject({ code: 'unsupported_parameter', param: 'defaults.topK' });
    expect(body.error.message).toContain('global defaults');
    expect((await api<ConversationTree>('GET', `/conversations/${plain.id}`)).body.messages).toEqual([]);
  });
});

describe("a conversation's settings", () => {
  it('change the reply: stop and max tokens cut it, compared with the same conversation without them', async () => {
    const without = await conversation();
    const withThem = await conversation({ settings: { stop: [' five'], maxTokens: 20, seed: 3 } });
    const capped = await conversation({ settings: { maxTokens: 2 } });
    expect(await reply(without.id, words)).toMatchObject({ content: words, finishReason: 'stop' });
    expect(await reply(withThem.id, words)).toMatchObject({ content: 'one two three four', finishReason: 'stop' });
    expect(await reply(capped.id, words)).toMatchObject({ content: 'one two', finishReason: 'length' });
  });

  it('are refused out of range with 400 naming the field', async () => {
    for (const [settings, param] of [
      [{ topP: 0 }, 'settings.topP'],
      [{ frequencyPenalty: -2.5 }, 'settings.frequencyPenalty'],
      [{ seed: 0.5 }, 'settings.seed'],
      [{ maxTokens: 0 }, 'settings.maxTokens'],
    ] as const) {
      const created = await api<ErrorBody>('POST', '/conversations', { settings });
      expect(created.status).toBe(400);
      expect(created.body.error.param).toBe(param);
    }
  });

  it('refuse a setting the model cannot honour, on create and on change, naming it', async () => {
    const created = await api<ErrorBody>('POST', '/conversations', { settings: { minP: 0.1 } });
    expect(created.status).toBe(400);
    expect(created.body.error).toMatchObject({ code: 'unsupported_parameter', param: 'settings.minP' });
    const plain = await conversation({ settings: { seed: 1 } });
    const patched = await api<ErrorBody>('PATCH', `/conversations/${plain.id}`, { settings: { topK: 40 } });
    expect(patched.status).toBe(400);
    expect(patched.body.error).toMatchObject({ code: 'unsupported_parameter', param: 'settings.topK' });
    expect((await api<ConversationTree>('GET', `/conversations/${plain.id}`)).body.conversation.settings).toEqual({ seed: 1 });
  });

  it('travel in an export and back through import, every field, and import refuses them out of range', async () => {
    const source = await conversation({ settings: { maxTokens: 9, stop: ['END'] } });
    await reply(source.id, 'hello there');
    const exported = (await api<ConversationExport>('GET', `/conversations/${source.id}/export`)).body;
    expect(exported.conversation.settings).toEqual({ maxTokens: 9, stop: ['END'] });
    const every = { maxTokens: 9, temperature: 0.7, topP: 0.9, topK: 40, minP: 0.05, presencePenalty: 0.5, frequencyPenalty: -0.5, repeatPenalty: 1.1, seed: 42, stop: ['END'] };
    const imported = await api<ConversationRecord>('POST', '/conversations/import', { ...exported, conversation: { ...exported.conversation, settings: every } });
    expect(imported.status).toBe(201);
    const again = (await api<ConversationExport>('GET', `/conversations/${imported.body.id}/export`)).body;
    expect(again.conversation.settings).toEqual(every);
    const refused = await api<ErrorBody>('POST', '/conversations/import', { ...exported, conversation: { ...exported.conversation, settings: { ...every, topK: -3 } } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.param).toBe('conversation.settings.topK');
  });
});

describe('presets', () => {
  it('are created, listed by name, renamed, changed and deleted', async () => {
    const coder = await api<PresetRecord>('POST', '/presets', { name: 'Coder', systemPrompt: 'You write code.', settings: { temperature: 0.2, stop: ['```'] } });
    expect(coder.status).toBe(201);
    expect(coder.body).toMatchObject({ name: 'Coder', systemPrompt: 'You write code.', settings: { temperature: 0.2, stop: ['```'] } });
    const brief = await api<PresetRecord>('POST', '/presets', { name: 'Brief' });
    expect(brief.body).toMatchObject({ name: 'Brief', systemPrompt: null, settings: {} });
    expect((await api<PresetList>('GET', '/presets')).body.presets.map((preset) => preset.name)).toEqual(['Brief', 'Coder']);

    const renamed = await api<PresetRecord>('PATCH', `/presets/${coder.body.id}`, { name: 'Programmer', settings: { temperature: 0.1 } });
    expect(renamed.body).toMatchObject({ id: coder.body.id, name: 'Programmer', systemPrompt: 'You write code.', settings: { temperature: 0.1 } });
    expect((await api<PresetRecord>('GET', `/presets/${coder.body.id}`)).body.name).toBe('Programmer');

    expect((await api('DELETE', `/presets/${brief.body.id}`)).status).toBe(204);
    expect((await api('GET', `/presets/${brief.body.id}`)).status).toBe(404);
    expect((await api('DELETE', `/presets/${brief.body.id}`)).status).toBe(404);
    await api('DELETE', `/presets/${coder.body.id}`);
  });

  it('refuse a taken name, a blank or control-character name, and bad settings, naming the field', async () => {
    const first = await api<PresetRecord>('POST', '/presets', { name: 'Taken' });
    const other = await api<PresetRecord>('POST', '/presets', { name: 'Other' });
    for (const [body, param] of [
      [{ name: 'Taken' }, 'name'],
      [{ name: '   ' }, 'name'],
      [{ name: 'bell\u0007' }, 'name'],
      [{ name: 'x'.repeat(101) }, 'name'],
      [{ name: 'ok', settings: { temperature: -1 } }, 'settings.temperature'],
      [{ name: 'ok', systemPrompt: 's'.repeat(100_001) }, 'systemPrompt'],
    ] as const) {
      const created = await api<ErrorBody>('POST', '/presets', body);
      expect(created.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(created.body.error.param).toBe(param);
    }
    const clash = await api<ErrorBody>('PATCH', `/presets/${other.body.id}`, { name: 'Taken' });
    expect(clash.status).toBe(400);
    expect(clash.body.error.param).toBe('name');
    // Renaming a preset to its own name is no clash.
    expect((await api('PATCH', `/presets/${first.body.id}`, { name: 'Taken' })).status).toBe(200);
    await api('DELETE', `/presets/${first.body.id}`);
    await api('DELETE', `/presets/${other.body.id}`);
  });

  it('start a conversation, with what the body gives over the preset, and apply to one; editing the preset later changes none', async () => {
    const preset = (await api<PresetRecord>('POST', '/presets', { name: 'Short', systemPrompt: 'Be brief.', settings: { maxTokens: 2, seed: 5 } })).body;
    const started = await conversation({ presetId: preset.id });
    expect(started).toMatchObject({ systemPrompt: 'Be brief.', settings: { maxTokens: 2, seed: 5 } });
    expect(await reply(started.id, words)).toMatchObject({ content: 'one two', finishReason: 'length' });
    const own = await conversation({ presetId: preset.id, settings: { maxTokens: 4 } });
    expect(own).toMatchObject({ systemPrompt: 'Be brief.', settings: { maxTokens: 4 } });

    const plain = await conversation({ title: 'plain' });
    const applied = await api<ConversationRecord>('PATCH', `/conversations/${plain.id}`, { presetId: preset.id });
    expect(applied.body).toMatchObject({ title: 'plain', systemPrompt: 'Be brief.', settings: { maxTokens: 2, seed: 5 } });

    await api('PATCH', `/presets/${preset.id}`, { settings: { maxTokens: 100 } });
    expect((await api<ConversationTree>('GET', `/conversations/${started.id}`)).body.conversation.settings).toEqual({ maxTokens: 2, seed: 5 });
    await api('DELETE', `/presets/${preset.id}`);

    const missing = await api<ErrorBody>('POST', '/conversations', { presetId: preset.id });
    expect(missing.status).toBe(404);
    expect(missing.body.error.param).toBe('presetId');
  });
});
