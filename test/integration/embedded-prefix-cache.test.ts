import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

const model = 'parlance-tiny';

interface Turn {
  readonly promptTokens: number;
  readonly cachedTokens: number | undefined;
}

/** A conversation that resends its whole history each turn, as a chat client does. */
class Conversation {
  readonly turns: Turn[] = [];
  private readonly messages: ChatCompletionMessageParam[];

  constructor(
    private readonly client: OpenAI,
    private readonly name: string,
  ) {
    // Each conversation starts differently, so only its own sequence's cache can serve its history.
    this.messages = [{ role: 'system', content: `You are ${name}, a patient assistant who answers every question.` }];
  }

  async turn(index: number): Promise<void> {
    this.messages.push({ role: 'user', content: `${this.name} asks question number ${index}: what comes next?` });
    const reply = await this.client.chat.completions.create({ model, messages: this.messages, max_tokens: 12, seed: index, temperature: 0.8 });
    this.messages.push({ role: 'assistant', content: reply.choices[0]?.message.content ?? '' });
    this.turns.push({ promptTokens: reply.usage?.prompt_tokens ?? 0, cachedTokens: reply.usage?.prompt_tokens_details?.cached_tokens });
  }
}

/**
 * From the second turn on, the cache holds at least the previous turn's whole prompt: the history is
 * not evaluated again, however the other conversations used the sequences in between.
 */
function expectHistoryCached(conversation: Conversation): void {
  const [first, ...later] = conversation.turns;
  expect(first?.cachedTokens).toBeDefined();
  let previous = first;
  for (const turn of later) {
    expect(turn.cachedTokens).toBeGreaterThanOrEqual(previous?.promptTokens ?? Number.POSITIVE_INFINITY);
    expect(turn.cachedTokens).toBeLessThan(turn.promptTokens);
    previous = turn;
  }
}

async function takeTurns(conversations: readonly Conversation[], turns: number, together: boolean): Promise<void> {
  for (let turn = 1; turn <= turns; turn++) {
    if (together) await Promise.all(conversations.map((conversation) => conversation.turn(turn)));
    else for (const conversation of conversations) await conversation.turn(turn);
  }
}

describe('the KV cache across turns (embedded engine)', () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer({ sequences: 4, queueLength: 8, contextSize: 2048, ...noShedding });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => server.stop());

  it('a conversation alone gets its history from the cache, and usage says how much', async () => {
    const alone = new Conversation(client, 'Ada');
    await takeTurns([alone], 3, false);
    expect(alone.turns[0]?.cachedTokens).toBeLessThan(alone.turns[0]?.promptTokens ?? 0);
    expectHistoryCached(alone);
  });

  it('two conversations taking turns each keep their own history cached', async () => {
    const pair = [new Conversation(client, 'Bea'), new Conversation(client, 'Cyd')];
    await takeTurns(pair, 4, false);
    for (const conversation of pair) expectHistoryCached(conversation);
  });

  it('four conversations taking turns at once each keep their own history cached', async () => {
    const four = ['Dot', 'Eve', 'Fay', 'Gus'].map((name) => new Conversation(client, name));
    await takeTurns(four, 4, true);
    for (const conversation of four) expectHistoryCached(conversation);
  });

  it('the cached count reaches streamed usage too', async () => {
    const messages: ChatCompletionMessageParam[] = [{ role: 'system', content: 'You are Hal, a terse assistant.' }, { role: 'user', content: 'Say something.' }];
    const first = await client.chat.completions.create({ model, messages, max_tokens: 6, seed: 1 });
    messages.push({ role: 'assistant', content: first.choices[0]?.message.content ?? '' }, { role: 'user', content: 'And then?' });
    const stream = await client.chat.completions.create({ model, messages, max_tokens: 6, seed: 2, stream: true, stream_options: { include_usage: true } });
    let cached: number | undefined;
    for await (const chunk of stream) if (chunk.usage) cached = chunk.usage.prompt_tokens_details?.cached_tokens;
    expect(cached).toBeGreaterThanOrEqual(first.usage?.prompt_tokens ?? Number.POSITIVE_INFINITY);
  });
});
