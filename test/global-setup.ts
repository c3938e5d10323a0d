import { ensureTinyModel } from '../src/engines/llama-cpp/tiny-model.js';
import { ensureWebBuilt } from '../web/ensure-built.js';
import { tinyModelPath } from './fixtures/paths.js';

/** Writes the tiny GGUF and builds the chat page once per run (each is a no-op when current). */
export default async function setup(): Promise<void> {
  await ensureTinyModel(tinyModelPath);
  await ensureWebBuilt();
}
