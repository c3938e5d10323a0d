import {
  getLlama,
  LlamaChat,
  LlamaCompletion,
  LlamaLogLevel,
  type ChatHistoryItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { ParlanceError } from '../../errors.js';
import type { Capability, ChatEvent, ChatMessage, Engine, EngineLoad, FinishReason, Generation, GenerationRequest, ModelInfo, SamplingOptions } from '../contract.js';
import { EventChannel } from '../event-channel.js';
import { SlotPool } from './sequence-pool.js';

export interface LlamaCppEngineOptions {
  readonly modelPath: string;
  /** The id clients send as `model`. */
  readonly modelId: string;
  readonly gpu: 'auto' | 'cuda' | 'vulkan' | 'metal' | 'off';
  /** Decode threads. On a 2-core machine one thread measured far faster than two (see docs/decisions). */
  readonly threads: number;
  /** Context sequences: how many chats are generated at once, batched by llama.cpp. */
  readonly sequences: number;
  /** Context window of each sequence, in tokens. */
  readonly contextSize: number;
  /** Tokens generated when a request sets no limit (still capped by what the context can hold). */
  readonly defaultMaxTokens: number;
  /** How many requests may wait for a free sequence. */
  readonly queueLength: number;
  /** Receives llama.cpp's warnings and errors. */
  readonly log?: (level: 'warn' | 'error', message: string) => void;
  /** Called as the model file loads, with the fraction loaded (0 to 1). */
  readonly onLoadProgress?: (fraction: number) => void;
}

/**
 * Sampling defaults when a request leaves them out. llama.cpp's own server
 * uses the same values; node-llama-cpp's default of temperature 0 (greedy)
 * makes small models loop, which users would read as a broken server.
 */
const samplingDefaults = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 } as const;

/** What this engine honours today; each new field joins the set with the code and the test that honour it. */
const llamaCapabilities: ReadonlySet<Capability> = new Set<Capability>(['seed']);

interface Slot {
  readonly sequence: LlamaContextSequence;
  readonly chat: LlamaChat;
  readonly completion: LlamaCompletion;
}

function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((message): ChatHistoryItem => {
    if (message.role === 'system') return { type: 'system', text: message.content };
    if (message.role === 'user') return { type: 'user', text: message.content };
    return { type: 'model', response: [message.content] };
  });
  // The reply is generated as the continuation of the last model turn; when the
  // client ended on an assistant message it asked us to continue that one.
  if (history.at(-1)?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}

function finishReasonOf(stopReason: string): FinishReason {
  if (stopReason === 'maxTokens') return 'length';
  if (stopReason === 'abort') return 'cancelled';
  return 'stop';
}

/**
 * The embedded engine: one GGUF model loaded in-process by node-llama-cpp,
 * one context with `sequences` parallel sequences that llama.cpp decodes in
 * one batch, and a FIFO queue in front of them. Each sequence keeps its KV
 * cache between requests, so a conversation that comes back to the same
 * sequence only evaluates its new tokens.
 */
export class LlamaCppEngine implements Engine {
  readonly name = 'llama';
  /**
   * node-llama-cpp starts each decode from `setImmediate`, so a socket write per token at the end of the
   * tick sits between tokens; a hold moves the writes to a timer, while the next token decodes, and
   * sends the tokens of a small model (~0.5-1.5 ms each) two or more to a write. 2 ms rather than 1:
   * on a loaded machine tokens come ~1-1.4 ms apart and a 1 ms hold rarely caught a second one
   * (bench/engine, BENCHMARKS.md "Embedded engine"). The first token is never held.
   */
  readonly streamCoalesceMs = 2;
  private readonly running = new Set<Promise<void>>();

  private constructor(
    private readonly options: LlamaCppEngineOptions,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly pool: SlotPool<Slot>,
    /** Every slot's LlamaChat resolves the same wrapper from the GGUF; templating is pure, so any slot's will do. */
    private readonly chatWrapper: LlamaChat['chatWrapper'],
  ) {}

  static async create(options: LlamaCppEngineOptions): Promise<LlamaCppEngine> {
    const llama = await getLlama({
      gpu: options.gpu === 'off' ? false : options.gpu,
      // Never try to compile llama.cpp at start-up: prebuilt binaries ship in the npm package,
      // and a source build needs the network and minutes of CPU.
      build: 'never',
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (!text) return;
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) options.log?.('error', text);
        else if (level === LlamaLogLevel.warn) options.log?.('warn', text);
      },
    });
    const model = await llama.loadModel({ modelPath: options.modelPath, ...(options.onLoadProgress ? { onLoadProgress: options.onLoadProgress } : {}) });
    const context = await model.createContext({
      contextSize: options.contextSize,
      sequences: options.sequences,
      threads: options.threads,
    });
    const slots: Slot[] = [];
    for (let i = 0; i < options.sequences; i++) {
      const sequence = context.getSequence();
      slots.push({ sequence, chat: new LlamaChat({ contextSequence: sequence }), completion: new LlamaCompletion({ contextSequence: sequence }) });
    }
    const first = slots[0];
    if (!first) throw new Error('at least one sequence is required');
    return new LlamaCppEngine(options, llama, model, context, new SlotPool(slots, options.queueLength), first.chat.chatWrapper);
  }

  /** Tokens each sequence can hold (llama.cpp may round the requested size up). */
  get contextLength(): number {
    return this.context.contextSize;
  }

  /** The chat template node-llama-cpp chose from the GGUF, for logs and /health. */
  get chatTemplate(): string {
    return this.chatWrapper.wrapperName;
  }

  models(): readonly ModelInfo[] {
    return [{ id: this.options.modelId, ownedBy: 'parlance', contextLength: this.contextLength, capabilities: llamaCapabilities }];
  }

  load(): EngineLoad {
    return { active: this.pool.busy, queued: this.pool.queued, capacity: this.pool.capacity };
  }

  private countPromptTokens(request: GenerationRequest): number {
    const input = request.input;
    if (input.kind === 'text') return this.model.tokenize(input.prompt).length;
    const { contextText } = this.chatWrapper.generateContextState({ chatHistory: toChatHistory(input.messages) });
    return contextText.tokenize(this.model.tokenizer).length;
  }

  /** Rejects before admission when the prompt, plus what was asked to generate, cannot fit. */
  private checkFits(promptTokens: number, sampling: SamplingOptions): number {
    const limit = this.contextLength;
    const wanted = sampling.maxTokens ?? 1;
    if (promptTokens + wanted > limit) {
      const detail = sampling.maxTokens === undefined ? `${promptTokens} in the prompt` : `${promptTokens} in the prompt and ${wanted} to generate`;
      throw new ParlanceError('context_length_exceeded', `This model's maximum context length is ${limit} tokens, but the request needs ${promptTokens + wanted} (${detail}). Shorten the messages or lower max_tokens.`, {
        param: sampling.maxTokens === undefined ? 'messages' : 'max_tokens',
      });
    }
    return sampling.maxTokens ?? Math.min(this.options.defaultMaxTokens, limit - promptTokens);
  }

  async open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    const promptTokens = this.countPromptTokens(request);
    const maxTokens = this.checkFits(promptTokens, request.sampling);
    const slot = await this.pool.acquire(signal);
    const stop = new AbortController();
    const onClientAbort = (): void => stop.abort();
    signal.addEventListener('abort', onClientAbort, { once: true });
    const channel = new EventChannel<ChatEvent>(() => stop.abort());
    const run = this.generate(slot, request, maxTokens, promptTokens, stop.signal, channel).finally(() => {
      signal.removeEventListener('abort', onClientAbort);
      this.pool.release(slot);
      this.running.delete(run);
    });
    this.running.add(run);
    return { promptTokens, [Symbol.asyncIterator]: () => channel };
  }

  private async generate(slot: Slot, request: GenerationRequest, maxTokens: number, promptTokens: number, signal: AbortSignal, channel: EventChannel<ChatEvent>): Promise<void> {
    let completionTokens = 0;
    let reason: FinishReason;
    const sampling = request.sampling;
    const common = {
      signal,
      stopOnAbortSignal: true,
      maxTokens,
      temperature: sampling.temperature ?? samplingDefaults.temperature,
      topP: sampling.topP ?? samplingDefaults.topP,
      topK: samplingDefaults.topK,
      minP: samplingDefaults.minP,
      ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
      ...(sampling.stop?.length ? { customStopTriggers: sampling.stop } : {}),
      onTextChunk: (text: string) => {
        if (text) channel.push({ type: 'text-delta', text });
      },
      onToken: (tokens: Token[]) => {
        completionTokens += tokens.length;
      },
    };
    try {
      if (request.input.kind === 'text') {
        const result = await slot.completion.generateCompletionWithMeta(request.input.prompt, common);
        reason = finishReasonOf(result.metadata.stopReason);
      } else {
        const result = await slot.chat.generateResponse(toChatHistory(request.input.messages), common);
        reason = finishReasonOf(result.metadata.stopReason);
      }
    } catch (error) {
      if (signal.aborted) {
        reason = 'cancelled';
      } else {
        reason = 'error';
        channel.push({ type: 'error', code: 'generation_failed', message: `the model failed while generating: ${(error as Error).message}` });
        this.options.log?.('error', `generation failed: ${(error as Error).stack ?? String(error)}`);
      }
    }
    channel.push({ type: 'usage', usage: { promptTokens, completionTokens } });
    channel.push({ type: 'finish', reason });
    channel.end();
  }

  async close(): Promise<void> {
    this.pool.close();
    await Promise.allSettled([...this.running]);
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
