import { TokenBias, type LLamaContextualRepeatPenalty, type LlamaModel, type Token } from 'node-llama-cpp';
import { ParlanceError } from '../../errors.js';
import type { SamplingOptions } from '../contract.js';

/**
 * Sampling defaults when a request leaves them out. llama.cpp's own server
 * uses the same values; node-llama-cpp's default of temperature 0 (greedy)
 * makes small models loop, which users would read as a broken server.
 */
const samplingDefaults = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 } as const;

/** The sampling part of node-llama-cpp's generate options (shared by LlamaChat and LlamaCompletion). */
export interface LlamaSampling {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly seed?: number;
  readonly repeatPenalty?: LLamaContextualRepeatPenalty;
  readonly tokenBias?: TokenBias;
}

/** How many tokens the model's vocabulary holds, when the GGUF says (it always does for llama.cpp models). */
function vocabularySize(model: LlamaModel): number | undefined {
  return model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length;
}

/**
 * OpenAI's `logit_bias` as node-llama-cpp's token bias: a bias is added to the token's logit, as OpenAI does,
 * and -100 (OpenAI's "ban") becomes a hard ban. Ids outside the vocabulary are refused, not passed to llama.cpp.
 */
function tokenBiasFor(model: LlamaModel, logitBias: ReadonlyMap<number, number>): TokenBias {
  const size = vocabularySize(model);
  const bias = new TokenBias(model.tokenizer);
  for (const [id, value] of logitBias) {
    if (!Number.isInteger(id) || id < 0 || (size !== undefined && id >= size)) {
      throw new ParlanceError('invalid_request', `logit_bias names token ${id}, which is not in the model's vocabulary (ids 0..${(size ?? 1) - 1}).`, { param: 'logit_bias' });
    }
    bias.set(id as Token, value <= -100 ? 'never' : { logit: value });
  }
  return bias;
}

/**
 * The request's sampling controls as node-llama-cpp options. The three penalties share llama.cpp's one
 * penalty sampler: OpenAI's presence and frequency penalties are additive (subtracted from the logit once,
 * or once per occurrence, over the last 64 tokens, llama.cpp's window), the repeat penalty multiplicative.
 * When none is asked for, node-llama-cpp's default (a 1.1 repeat penalty) stays as it always was.
 */
export function samplingFor(model: LlamaModel, sampling: SamplingOptions): LlamaSampling {
  const penalties = sampling.presencePenalty !== undefined || sampling.frequencyPenalty !== undefined || sampling.repeatPenalty !== undefined;
  return {
    temperature: sampling.temperature ?? samplingDefaults.temperature,
    topP: sampling.topP ?? samplingDefaults.topP,
    topK: sampling.topK ?? samplingDefaults.topK,
    minP: sampling.minP ?? samplingDefaults.minP,
    ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
    ...(penalties
      ? {
          repeatPenalty: {
            ...(sampling.repeatPenalty === undefined ? {} : { penalty: sampling.repeatPenalty }),
            ...(sampling.presencePenalty === undefined ? {} : { presencePenalty: sampling.presencePenalty }),
            ...(sampling.frequencyPenalty === undefined ? {} : { frequencyPenalty: sampling.frequencyPenalty }),
          },
        }
      : {}),
    ...(sampling.logitBias !== undefined && sampling.logitBias.size > 0 ? { tokenBias: tokenBiasFor(model, sampling.logitBias) } : {}),
  };
}
