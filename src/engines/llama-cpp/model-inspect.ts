import { basename } from 'node:path';
import { GgufInsights, readGgufFileInfo, resolveChatWrapper } from 'node-llama-cpp';
import type { Capability } from '../contract.js';
import { embeddingCapabilities } from './embeddings.js';
import { llamaCapabilities, reasoningCapabilities } from './engine.js';
import { templateThinks } from './reasoning.js';

/**
 * What a model on disk will be able to do once loaded, from its GGUF header alone (no weights read), so that a
 * first request to it is checked against the same capabilities as later ones. The loaded engine's own set
 * replaces this one. Rejects when the file is no GGUF.
 */
export async function inspectCapabilities(path: string): Promise<ReadonlySet<Capability>> {
  const fileInfo = await readGgufFileInfo(path, { sourceType: 'filesystem', logWarnings: false });
  const insights = await GgufInsights.from(fileInfo);
  const wrapper = resolveChatWrapper({ fileInfo, filename: basename(path) });
  const thinks = wrapper !== null && templateThinks(wrapper);
  return new Set([...llamaCapabilities, ...(thinks ? reasoningCapabilities : []), ...embeddingCapabilities(insights)]);
}
