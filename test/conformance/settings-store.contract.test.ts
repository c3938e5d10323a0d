/**
 * The SettingsStore part of the store contract (global defaults and presets), on SQLite and, when its
 * binaries are installed, PostgreSQL, as test/conformance/store.contract.test.ts runs the rest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isParlanceError } from '../../src/errors.js';
import { presetsMax, type ConversationStore } from '../../src/store/contract.js';
import { openStore } from '../../src/store/kysely/dialects.js';
import { storeTargets, type StoreTarget } from '../fixtures/store-targets.js';

const targets = storeTargets('SettingsStore');

/** What a store call threw: its code and param. */
async function refusal(promise: Promise<unknown>): Promise<{ code: string; param: string | null }> {
  try {
    await promise;
  } catch (error) {
    if (isParlanceError(error)) return { code: error.code, param: error.param };
    throw error;
  }
  throw new Error('expected a refusal');
}

const every = { maxTokens: 9, temperature: 0.7, topP: 0.9, topK: 40, minP: 0.05, presencePenalty: 0.5, frequencyPenalty: -0.5, repeatPenalty: 1.1, seed: -42, stop: ['END', '\n\n'] };

describe.each(targets)('SettingsStore on $name', (target) => {
  let env: Awaited<ReturnType<StoreTarget['start']>>;
  let url: string;
  let store: ConversationStore;

  beforeAll(async () => {
    env = await target.start();
    url = await env.newUrl();
    store = await openStore(url);
    await store.migrate();
  });
  afterAll(async () => {
    await store?.close();
    await env?.stop();
  });

  it('keeps the global defaults, every field exact, replaced as a whole, and seen by another store on the database', async () => {
    expect(await store.settings.getDefaults()).toEqual({});
    expect(await store.settings.setDefaults(every)).toEqual(every);
    expect(await store.settings.getDefaults()).toEqual(every);
    await store.settings.setDefaults({ temperature: 0.3 });
    const replica = await openStore(url);
    try {
      expect(await replica.settings.getDefaults()).toEqual({ temperature: 0.3 });
    } finally {
      await replica.close();
    }
  });

  it('refuses defaults out of range, naming the field, and keeps what it had', async () => {
    await store.settings.setDefaults({ seed: 1 });
    expect(await refusal(store.settings.setDefaults({ topK: -1 }))).toEqual({ code: 'invalid_request', param: 'defaults.topK' });
    expect(await refusal(store.settings.setDefaults({ repeatPenalty: 3 }))).toEqual({ code: 'invalid_request', param: 'defaults.repeatPenalty' });
    expect(await refusal(store.settings.setDefaults({ nope: 1 } as never))).toMatchObject({ code: 'invalid_request' });
    expect(await store.settings.getDefaults()).toEqual({ seed: 1 });
  });

  it('creates, lists by name, gets, changes and deletes presets', async () => {
    const b = await store.settings.createPreset({ name: 'b writer', systemPrompt: 'You write.', settings: every });
    const a = await store.settings.createPreset({ name: 'a coder' });
    expect(a).toMatchObject({ name: 'a coder', systemPrompt: null, settings: {} });
    expect(await store.settings.getPreset(b.id)).toEqual(b);
    expect((await store.settings.listPresets()).map((preset) => preset.name)).toEqual(['a coder', 'b writer']);

    const changed = await store.settings.updatePreset(b.id, { name: 'c writer', settings: { temperature: 1 } });
    expect(changed).toMatchObject({ id: b.id, name: 'c writer', systemPrompt: 'You write.', settings: { temperature: 1 }, createdAt: b.createdAt });
    expect(changed.updatedAt).toBeGreaterThan(b.updatedAt);
    expect(await store.settings.updatePreset(b.id, { systemPrompt: null })).toMatchObject({ systemPrompt: null, name: 'c writer' });

    await store.settings.deletePreset(a.id);
    expect(await store.settings.getPreset(a.id)).toBeUndefined();
    expect(await refusal(store.settings.deletePreset(a.id))).toMatchObject({ code: 'not_found' });
    expect(await refusal(store.settings.updatePreset(a.id, { name: 'x' }))).toMatchObject({ code: 'not_found' });
    await store.settings.deletePreset(b.id);
  });

  it('keeps preset names unique, even when two writers race for one, and writes nothing refused', async () => {
    const taken = await store.settings.createPreset({ name: 'Taken' });
    const other = await store.settings.createPreset({ name: 'Other' });
    expect(await refusal(store.settings.createPreset({ name: 'Taken' }))).toEqual({ code: 'invalid_request', param: 'name' });
    expect(await refusal(store.settings.updatePreset(other.id, { name: 'Taken' }))).toEqual({ code: 'invalid_request', param: 'name' });
    expect(await refusal(store.settings.createPreset({ name: 'bad', settings: { minP: 2 } }))).toEqual({ code: 'invalid_request', param: 'settings.minP' });
    const racers = await Promise.allSettled([1, 2, 3, 4].map(() => store.settings.createPreset({ name: 'Raced' })));
    expect(racers.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    expect((await store.settings.listPresets()).map((preset) => preset.name)).toEqual(['Other', 'Raced', 'Taken']);
    for (const preset of await store.settings.listPresets()) await store.settings.deletePreset(preset.id);
    expect(taken.id).not.toBe(other.id);
  });

  it(`keeps at most ${presetsMax} presets`, async () => {
    for (let i = 0; i < presetsMax; i++) await store.settings.createPreset({ name: `p${String(i).padStart(3, '0')}` });
    expect(await refusal(store.settings.createPreset({ name: 'one more' }))).toEqual({ code: 'invalid_request', param: 'name' });
    expect(await store.settings.listPresets()).toHaveLength(presetsMax);
  });

  it("stores a conversation's full settings set, and its export carries them", async () => {
    const conversation = await store.createConversation({ settings: every });
    expect((await store.getConversation(conversation.id))?.settings).toEqual(every);
    const exported = await store.exportConversation(conversation.id);
    expect(exported?.conversation.settings).toEqual(every);
    const imported = await store.importConversation(exported);
    expect(imported.settings).toEqual(every);
    expect(await refusal(store.importConversation({ ...exported, conversation: { ...exported?.conversation, settings: { ...every, presencePenalty: 9 } } }))).toEqual({
      code: 'invalid_request',
      param: 'data.conversation.settings.presencePenalty',
    });
    expect(await refusal(store.updateConversation(conversation.id, { settings: { topP: 0 } }))).toEqual({ code: 'invalid_request', param: 'settings.topP' });
  });
});
