/**
 * The chat wrapper remembered per model file: a later start (a new ChatWrapperChoices on the same file) builds a
 * wrapper that writes exactly the prompt node-llama-cpp's own resolution writes, for a template it recognises
 * (ChatML) and for one it keeps as jinja (a thinking template); a changed model file is resolved again.
 */
import { readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { getLlama, resolveChatWrapper, type ChatHistoryItem, type ChatWrapper, type Llama, type LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatWrapperChoices } from '../../src/engines/llama-cpp/chat-wrapper-choice.js';
import { templateThinks } from '../../src/engines/llama-cpp/reasoning.js';
import { THINKING_CHATML_TEMPLATE, writeTinyModel } from '../../src/engines/llama-cpp/tiny-model.js';
import { tempDirs } from '../fixtures/temp-dirs.js';

const newDir = tempDirs('parlance-chat-wrapper-');
let llama: Llama;
const models: LlamaModel[] = [];
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never' });
}, 30_000);
afterAll(async () => {
  for (const model of models) await model.dispose();
  await llama.dispose();
});

/** A tiny model under a name that gives node-llama-cpp no hint (so it resolves by rendering the template). */
async function tinyModel(dir: string, template?: string): Promise<{ path: string; model: LlamaModel }> {
  const path = join(dir, 'model.gguf');
  await writeTinyModel(path, template === undefined ? {} : { chatTemplate: template });
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  models.push(model);
  return { path, model };
}

const history: ChatHistoryItem[] = [
  { type: 'system', text: 'be brief' },
  { type: 'user', text: 'hello' },
  { type: 'model', response: ['hi there'] },
  { type: 'user', text: 'and again' },
  { type: 'model', response: [] },
];
const prompt = (wrapper: ChatWrapper): unknown => wrapper.generateContextState({ chatHistory: history }).contextText.toJSON();

describe('ChatWrapperChoices', () => {
  for (const [name, template, expected] of [['ChatML', undefined, 'ChatML'], ['a thinking template', THINKING_CHATML_TEMPLATE, 'JinjaTemplate']] as const) {
    it(`rebuilds at a later start the wrapper node-llama-cpp resolves for ${name}`, async () => {
      const dir = await newDir();
      const file = join(dir, 'data', 'chat-wrappers.json');
      const { path, model } = await tinyModel(dir, template);
      const resolved = resolveChatWrapper(model);
      expect(resolved.wrapperName).toBe(expected);

      const first = await new ChatWrapperChoices(file).resolve(model, path);
      expect(prompt(first)).toEqual(prompt(resolved));
      expect(Object.values(JSON.parse(await readFile(file, 'utf8')) as object)).toHaveLength(1);

      const later = await new ChatWrapperChoices(file).resolve(model, path);
      expect(later.wrapperName).toBe(resolved.wrapperName);
      expect(templateThinks(later)).toBe(templateThinks(resolved));
      expect(prompt(later)).toEqual(prompt(resolved));
    }, 120_000);
  }

  it('uses what it remembered, and resolves a changed file again', async () => {
    const dir = await newDir();
    const file = join(dir, 'chat-wrappers.json');
    const { path, model } = await tinyModel(dir);
    await new ChatWrapperChoices(file).resolve(model, path);
    // What a later start reads is what it builds: a remembered Llama 3 choice gives a Llama 3 wrapper.
    const remembered = JSON.parse(await readFile(file, 'utf8')) as Record<string, { type: string; config: number }>;
    const [key] = Object.keys(remembered);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, JSON.stringify({ [key ?? '']: { type: 'llama3', config: -1 } }));
    expect((await new ChatWrapperChoices(file).resolve(model, path)).wrapperName).toBe('Llama 3');
    // The file changed (a new modification time): resolved again, from its template.
    await utimes(path, new Date(), new Date(Date.now() + 5000));
    expect((await new ChatWrapperChoices(file).resolve(model, path)).wrapperName).toBe('ChatML');
  }, 120_000);
});
