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

/**
 * The memory a model will take once loaded, in bytes, from its GGUF header (no weights read): its weights plus
 * a context of `sequences` × `contextSize` tokens, as node-llama-cpp estimates them for the CPU (GPU layers are
 * not counted: the budget is the machine's memory). The vocabulary is not read.
 */
export async function estimateMemory(path: string, context: { readonly contextSize: number; readonly sequences: number }): Promise<number> {
  const fileInfo = await readGgufFileInfo(path, { sourceType: 'filesystem', logWarnings: false, ignoreKeys: ['tokenizer.ggml.tokens', 'tokenizer.ggml.merges', 'tokenizer.ggml.token_type', 'tokenizer.ggml.scores'] });
  const insights = await GgufInsights.from(fileInfo);
  const weights = await insights.estimateModelResourceRequirementsV2({ gpuLayers: 0 });
  const kv = await insights.estimateContextResourceRequirementsV2({ contextSize: context.contextSize * context.sequences, sequences: context.sequences, modelGpuLayers: 0 });
  return weights.cpuRam + weights.gpuVram + kv.cpuRam + kv.gpuVram;
}
