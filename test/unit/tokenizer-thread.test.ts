/**
 * The tokenizer thread gives exactly the tokens the event loop would: the same vocabulary, plain text and a
 * templated chat (LlamaText with special tokens) alike, and it answers while the main thread is free.
 */
import { getLlama, LlamaChat, type Llama, type LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenizerThread } from '../../src/engines/llama-cpp/tokenizer-thread.js';
import { tinyModelPath } from '../fixtures/paths.js';

let llama: Llama;
let model: LlamaModel;
let thread: TokenizerThread;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never' });
  model = await llama.loadModel({ modelPath: tinyModelPath, vocabOnly: true });
  thread = new TokenizerThread(tinyModelPath);
  for (let i = 0; i < 200 && !thread.usable; i++) await new Promise((resolve) => setTimeout(resolve, 50));
}, 30_000);
afterAll(async () => {
  await thread.close();
  await model.dispose();
  await llama.dispose();
});

describe('TokenizerThread', () => {
  it('loads the vocabulary and tokenizes plain text as the main thread does', async () => {
    expect(thread.usable).toBe(true);
    for (const text of ['', 'hello world', 'ünïcödé and emoji 🙂 '.repeat(500), 'lorem ipsum dolor '.repeat(20_000)]) {
      expect([...(await thread.tokenize({ text }))]).toEqual(model.tokenize(text));
    }
  });

  it('tokenizes a templated chat, special tokens included, as the main thread does', async () => {
    const context = await (await llama.loadModel({ modelPath: tinyModelPath })).createContext({ contextSize: 256 });
    try {
      const wrapper = new LlamaChat({ contextSequence: context.getSequence() }).chatWrapper;
      const { contextText } = wrapper.generateContextState({
        chatHistory: [
          { type: 'system', text: 'be brief' },
          { type: 'user', text: 'a question '.repeat(3000) },
          { type: 'model', response: [] },
        ],
      });
      expect([...(await thread.tokenize({ json: contextText.toJSON() }))]).toEqual(contextText.tokenize(model.tokenizer));
    } finally {
      await context.dispose();
    }
  });
});
