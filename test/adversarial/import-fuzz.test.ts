/**
 * Import takes nothing the API would refuse: for every field of a real export, each invalid value is refused
 * with 400 naming that field, and nothing is written. A valid export still imports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { expectOpenAIError, postJson } from './helpers.js';

let server: TestServer;
let valid: Record<string, unknown>;
beforeAll(async () => {
  server = await startTestServer({ embedded: false, scripted: true });
  const conversation = (await (await postJson(`${server.url}/api/conversations`, { model: 'parlance-scripted', settings: { temperature: 0.5, stop: ['END'] } })).json()) as { id: string };
  await (await postJson(`${server.url}/api/conversations/${conversation.id}/messages`, { content: 'one two three' })).text();
  valid = (await (await fetch(`${server.url}/api/conversations/${conversation.id}/export`)).json()) as Record<string, unknown>;
});
afterAll(async () => server.stop());

const future = Date.now() + 24 * 3600_000;
const bad: Record<string, readonly unknown[]> = {
  exportedAt: [1e15, future, -1, 1.5, '0'],
  'conversation.title': ['', '   ', 'x'.repeat(201), 'x'.repeat(1_000_000), 'tab\there', 'line\nbreak', 'nul\u0000', 'bell\u0007', 'del\u007f', 'rlo \u202Egnp.exe', 'isolate \u2066x\u2069', 'mark \u200F', 42, null],
  'conversation.model': ['', 'm'.repeat(257), 7],
  'conversation.systemPrompt': ['s'.repeat(100_001), 1],
  'conversation.settings.temperature': [1e308, -0.1, 2.01, '1'],
  'conversation.settings.topP': [0, -1, 1.5],
  'conversation.settings.maxTokens': [0, 1.5, 1e12],
  'conversation.settings.seed': [0.5, '1'],
  'conversation.settings.stop': [[''], Array.from({ length: 2000 }, (_, i) => `s${i}`), ['x'.repeat(257)], 'END'],
  'conversation.settings.topK': [-1, 1.5, 1_000_001, '40'],
  'conversation.settings.minP': [-0.1, 1.1],
  'conversation.settings.presencePenalty': [-2.1, 2.1, null],
  'conversation.settings.frequencyPenalty': [-3, 3],
  'conversation.settings.repeatPenalty': [0, 2.5],
  'conversation.settings.unknown': [1],
  'conversation.createdAt': [1e15, future, -5],
  'conversation.updatedAt': [1e15, future, Number.MAX_SAFE_INTEGER],
  'conversation.id': ['', 'i'.repeat(65)],
  'messages[0].content': [1, null],
  'messages[0].role': ['root', 'tool'],
  'messages[0].status': ['done'],
  'messages[0].createdAt': [1e15, future],
  'messages[0].updatedAt': [1e15, future],
  'messages[0].model': [''],
  'messages[0].id': ['', 'i'.repeat(65)],
  'messages[1].usage.promptTokens': [-1, 0.5],
  'messages[1].timings.totalMs': [-1],
  'messages[1].error': [{ code: '', message: 'x' }, { code: 'c'.repeat(101), message: '' }],
  'messages[1].toolCalls': [Array.from({ length: 129 }, (_, i) => ({ id: `c${i}`, name: 'f', arguments: '{}', result: null })), [{ id: '', name: 'f', arguments: '{}', result: null }], 'none'],
  'messages[1].finishReason': ['', 'r'.repeat(33), 1],
  'messages[1].reasoning': [7],
};

/** A copy of the valid export with the field at `path` (dots and [n]) set to `value`. */
function withField(path: string, value: unknown): unknown {
  const copy = structuredClone(valid);
  const segments = path.split(/\.|\[(\d+)\]/).filter((s) => s !== undefined && s !== '');
  let node = copy as Record<string, unknown>;
  for (const segment of segments.slice(0, -1)) {
    const next = node[segment] ?? {};
    node[segment] = next;
    node = next as Record<string, unknown>;
  }
  node[segments.at(-1)!] = value;
  return copy;
}

async function conversationCount(): Promise<number> {
  return ((await (await fetch(`${server.url}/api/conversations?limit=100`)).json()) as { conversations: unknown[] }).conversations.length;
}

describe('import', () => {
  it('imports the valid export', async () => {
    const response = await postJson(`${server.url}/api/conversations/import`, valid);
    expect(response.status).toBe(201);
  });

  it.each(Object.entries(bad))('refuses every invalid %s with its name, writing nothing', async (path, values) => {
    const before = await conversationCount();
    for (const value of values) {
      const response = await postJson(`${server.url}/api/conversations/import`, withField(path, value));
      const body: unknown = await response.json();
      const shown = JSON.stringify(value)?.slice(0, 60);
      expect(response.status, `${path} = ${shown}: ${JSON.stringify(body).slice(0, 300)}`).toBe(400);
      const { error } = expectOpenAIError(body, 'invalid_request');
      // The field itself, or the part of it at fault (stop[0]); an unknown key is named in the message of its object.
      const unknownKey = path.endsWith('.unknown');
      const named = unknownKey ? path.slice(0, -'.unknown'.length) : path;
      expect(error.param === named || error.param?.startsWith(`${named}[`) || error.param?.startsWith(`${named}.`), `${path} = ${shown}: param ${error.param}`).toBe(true);
      expect(error.message, `${path} = ${shown}`).toContain(unknownKey ? 'unknown' : named);
    }
    expect(await conversationCount()).toBe(before);
  });

  it('refuses the same titles through the API', async () => {
    for (const title of ['', 'rlo \u202Egnp.exe', 'line\nbreak', 'x'.repeat(201)]) {
      const response = await postJson(`${server.url}/api/conversations`, { title });
      expect(response.status, JSON.stringify(title)).toBe(400);
      expectOpenAIError(await response.json(), 'invalid_request', 'title');
    }
  });
});
