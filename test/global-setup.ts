import { ensureTinyModel } from '../src/engines/llama-cpp/tiny-model.js';
import { tinyModelPath } from './fixtures/paths.js';

/** Writes the tiny GGUF once per run; every test that needs a real model loads it. */
export default async function setup(): Promise<void> {
  await ensureTinyModel(tinyModelPath);
}
