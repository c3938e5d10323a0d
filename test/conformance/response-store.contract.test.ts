/**
 * The ResponseStore part of the store contract (OpenAI Responses API's stored responses), on SQLite and,
 * when its binaries are installed, PostgreSQL, as test/conformance/store.contract.test.ts runs the rest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationStore, ResponseRecord } from '../../src/store/contract.js';
import { openStore } from '../../src/store/kysely/dialects.js';
import { storeTargets } from '../fixtures/store-targets.js';

const targets = storeTargets('ResponseStore');

const record = (id: string, overrides: Partial<ResponseRecord> = {}): ResponseRecord => ({
  id,
  model: 'm',
  createdAt: 1_700_000_000_123,
  previousResponseId: null,
  input: [{ role: 'user', content: 'héllo ☃' }],
  body: { id, object: 'response', status: 'completed', output: [{ type: 'message', content: [{ type: 'output_text', text: 'hi' }] }] },
  ...overrides,
});

describe.each(targets)('ResponseStore on $name', (target) => {
  let store: ConversationStore;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    const started = await target.start();
    stop = started.stop;
    store = await openStore(await started.newUrl());
    await store.migrate();
  });
  afterAll(async () => {
    await store.close();
    await stop();
  });

  it('gives back what it saved, JSON and times exact', async () => {
    const saved = record('resp_a', { previousResponseId: 'resp_0' });
    await store.responses.saveResponse(saved);
    expect(await store.responses.getResponse('resp_a')).toEqual(saved);
  });

  it('answers undefined for an unknown id, and a second save replaces the first', async () => {
    expect(await store.responses.getResponse('resp_missing')).toBeUndefined();
    await store.responses.saveResponse(record('resp_b'));
    await store.responses.saveResponse(record('resp_b', { body: { id: 'resp_b', status: 'failed' } }));
    expect((await store.responses.getResponse('resp_b'))?.body).toEqual({ id: 'resp_b', status: 'failed' });
  });

  it('deletes, and says whether there was anything to delete', async () => {
    await store.responses.saveResponse(record('resp_c'));
    expect(await store.responses.deleteResponse('resp_c')).toBe(true);
    expect(await store.responses.getResponse('resp_c')).toBeUndefined();
    expect(await store.responses.deleteResponse('resp_c')).toBe(false);
  });

  it('keeps responses apart from conversations: deleting one touches no other', async () => {
    const conversation = await store.createConversation({ title: 'kept' });
    await store.responses.saveResponse(record('resp_d'));
    await store.deleteConversation(conversation.id);
    expect(await store.responses.getResponse('resp_d')).toBeDefined();
  });
});
