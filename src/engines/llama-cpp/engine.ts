import {
  getLlama,
  LlamaChat,
  LlamaCompletion,
  LlamaLogLevel,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatWrapper,
  type LlamaChatResponseChunk,
  type LlamaGrammar,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { join } from 'node:path';
import { ParlanceError } from '../../errors.js';
import type { Capability, ChatEvent, EmbeddingRequest, EmbeddingResult, Engine, EngineLoad, EngineRuntime, FinishReason, Generation, GenerationRequest, ModelInfo, RerankRequest, RerankResult, SamplingOptions } from '../contract.js';
import { EventChannel } from '../event-channel.js';
import { toChatHistory } from './chat-history.js';
import { checkResponseFormat, grammarFor } from './grammar.js';
import { skipThinking, templateThinks, thoughtBudget, wrapperForEffort } from './reasoning.js';
import { withRememberedBinaryCheck } from './binary-check.js';
import { LlamaEmbeddings } from './embeddings.js';
import { describeBinding } from './local-build.js';
import { samplingFor, type LlamaSampling } from './sampling.js';
import { SlotPool } from './sequence-pool.js';
import { TokenizerThread, type TokenizerInput } from './tokenizer-thread.js';
import type { ChatWrapperChoices } from './chat-wrapper-choice.js';
import { forcingCalls, planFunctions, toFunctions, ToolCallEvents, type FunctionsPlan } from './tool-calls.js';

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
  /** A llama.cpp binding shared with other engines (a model library, see {@link openLlama}); the engine leaves it open on close. */
  readonly llama?: Llama;
  /** Remembers the chat wrapper resolved for each model file (chat-wrapper-choice.ts); default: resolved at every load. */
  readonly chatWrappers?: ChatWrapperChoices;
}

/**
 * The llama.cpp binding, with its messages sent to `log`: one per process is enough, however many models it loads.
 * With `dataDir`, a passed test of the binary is remembered there and not run again (binary-check.ts).
 */
export async function openLlama(options: Pick<LlamaCppEngineOptions, 'gpu' | 'log'> & { readonly dataDir?: string }): Promise<Llama> {
  const open = (): Promise<Llama> => getLlama({
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
  return options.dataDir === undefined ? open() : withRememberedBinaryCheck(join(options.dataDir, 'binary-checks.json'), open);
}

/**
 * What this engine honours for every model, each with the code and the test that honour it
 * (test/integration/embedded-agents.test.ts, test/conformance/engine.contract.test.ts). Not here: `logprobs`
 * (node-llama-cpp 3.21 exposes token probabilities only on a bare sequence evaluation, not through LlamaChat's
 * generation) and `images`; `embeddings` and `rerank` come from embeddings.ts, for models that have them.
 */
export const llamaCapabilities: readonly Capability[] = [
  'tools', 'tool_choice', 'parallel_tool_calls', 'json_object', 'json_schema',
  'top_k', 'min_p', 'seed', 'presence_penalty', 'frequency_penalty', 'repeat_penalty', 'logit_bias',
];
/** Only where the chat template separates thinking: thought segments become reasoning deltas, and get budgets. */
export const reasoningCapabilities: readonly Capability[] = ['reasoning', 'reasoning_effort'];

interface Slot {
  readonly sequence: LlamaContextSequence;
  readonly chat: LlamaChat;
  readonly completion: LlamaCompletion;
}

/** What a request turns into once checked: everything that can fail with a 400 has failed by now. */
type Plan =
  | { readonly kind: 'text'; readonly prompt: string; readonly tokens: Token[]; readonly promptTokens: number }
  | {
      readonly kind: 'chat';
      readonly history: ChatHistoryItem[];
      readonly functions: FunctionsPlan | undefined;
      /** The model's chat wrapper, or one made for this request (a template's own effort level). */
      readonly wrapper: ChatWrapper;
      readonly thoughtBudget: number | undefined;
      /** The templated prompt, for choosing the sequence whose cache holds most of it. */
      readonly tokens: Token[];
      readonly promptTokens: number;
    };

/**
 * The most characters one token of the vocabulary stands for: the longest token string in the GGUF (a byte-level
 * BPE string has a character per byte, an SPM piece its text or a longer `<0xNN>`, so this over-estimates, which
 * keeps the bound below safe), plus one for a space a tokenizer may add. Infinity (no bound) without a token list.
 */
function longestTokenChars(model: LlamaModel): number {
  const tokens = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
  if (tokens === undefined || tokens.length === 0) return Number.POSITIVE_INFINITY;
  let longest = 0;
  for (const token of tokens) if (token.length > longest) longest = token.length;
  return longest + 1;
}

/** Prompts of at least this many characters are tokenized on the tokenizer thread (~10 ms of work and more). */
const offThreadChars = 16_384;

/** The characters of a request's text: every token covers at most `longestTokenChars` of them. */
function promptChars(input: GenerationRequest['input']): number {
  if (input.kind === 'text') return input.prompt.length;
  let chars = 0;
  for (const message of input.messages) chars += message.content.length;
  return chars;
}

/**
 * How many of a sequence's cached tokens a prompt can reuse, counted only when they are at least half of
 * what the sequence holds. A shared start alone (the same system prompt, the template's opening) would
 * otherwise send a new conversation onto another conversation's sequence and overwrite its history, where
 * the least recently used sequence is the better victim. llama-server takes such a slot but first saves
 * what it held to a RAM cache; there is none here.
 */
function reusableTokens(cached: readonly Token[], prompt: readonly Token[]): number {
  const limit = Math.min(cached.length, prompt.length);
  let shared = 0;
  while (shared < limit && cached[shared] === prompt[shared]) shared++;
  return shared * 2 >= cached.length ? shared : 0;
}

/**
 * Prompt tokens node-llama-cpp took from the sequence's KV cache rather than evaluating, from its
 * token meter: a prompt token counts as input when evaluated, except the last, whose logits make it
 * count as output (and which is always evaluated, to get them).
 */
function cachedPromptTokensOf(promptTokens: number, inputTokensEvaluated: number): number {
  return Math.max(0, promptTokens - 1 - inputTokensEvaluated);
}

function finishReasonOf(stopReason: string): FinishReason {
  if (stopReason === 'maxTokens') return 'length';
  if (stopReason === 'abort') return 'cancelled';
  if (stopReason === 'functionCalls') return 'tool_calls';
  return 'stop';
}

/** The stop string a custom stop trigger matched (its text pieces; token ids only come from our own triggers' tokenisation). */
function stopSequenceOf(metadata: { readonly stopReason: string; readonly customStopTrigger?: readonly (string | Token)[] }): string | undefined {
  if (metadata.stopReason !== 'customStopTrigger' || metadata.customStopTrigger === undefined) return undefined;
  return metadata.customStopTrigger.filter((piece): piece is string => typeof piece === 'string').join('');
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
  private embeddingsPart: LlamaEmbeddings | undefined;
  private modelCapabilities: ReadonlySet<Capability> | undefined;

  private constructor(
    private readonly options: LlamaCppEngineOptions,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly pool: SlotPool<Slot>,
    /** Every slot's LlamaChat resolves the same wrapper from the GGUF; templating is pure, so any slot's will do. */
    private readonly chatWrapper: LlamaChat['chatWrapper'],
    /** See {@link longestTokenChars}. */
    private readonly maxTokenChars: number,
  ) {
    this.capabilities = new Set([...llamaCapabilities, ...(templateThinks(chatWrapper) ? reasoningCapabilities : [])]);
  }

  private readonly capabilities: ReadonlySet<Capability>;
  /** Started by the first long prompt (which is still tokenized here while the thread loads). */
  private tokenizer: TokenizerThread | undefined;

  static async create(options: LlamaCppEngineOptions): Promise<LlamaCppEngine> {
    const llama = options.llama ?? (await openLlama(options));
    const model = await llama.loadModel({ modelPath: options.modelPath, ...(options.onLoadProgress ? { onLoadProgress: options.onLoadProgress } : {}) });
    const context = await model.createContext({
      contextSize: options.contextSize,
      sequences: options.sequences,
      threads: options.threads,
    });
    // Resolved once for every slot: each LlamaChat left to "auto" would resolve it again, and for a jinja template
    // that renders it against every specialised wrapper (~0.3 s each on this machine, the most of a start's CPU).
    // Remembered per model file, so that only a model's first start pays for that.
    const chatWrapper = options.chatWrappers ? await options.chatWrappers.resolve(model, options.modelPath) : resolveChatWrapper(model);
    const slots: Slot[] = [];
    for (let i = 0; i < options.sequences; i++) {
      const sequence = context.getSequence();
      slots.push({ sequence, chat: new LlamaChat({ contextSequence: sequence, chatWrapper }), completion: new LlamaCompletion({ contextSequence: sequence }) });
    }
    const first = slots[0];
    if (!first) throw new Error('at least one sequence is required');
    return new LlamaCppEngine(options, llama, model, context, new SlotPool(slots, options.queueLength), first.chat.chatWrapper, longestTokenChars(model));
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
    this.modelCapabilities ??= new Set([...this.capabilities, ...this.embeddings.capabilities]);
    return [{ id: this.options.modelId, ownedBy: 'parlance', contextLength: this.contextLength, capabilities: this.modelCapabilities }];
  }

  /** Embeddings and rerank run in contexts of their own, created on first use (embeddings.ts). */
  private get embeddings(): LlamaEmbeddings {
    return (this.embeddingsPart ??= new LlamaEmbeddings(this.model, { contextSize: this.options.contextSize, threads: this.options.threads, queueLength: this.options.queueLength }));
  }

  embed(request: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResult> {
    return this.embeddings.embed(request, signal);
  }

  rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    return this.embeddings.rerank(request, signal);
  }

  runtime(): EngineRuntime {
    return describeBinding(this.llama);
  }

  load(): EngineLoad {
    return { active: this.pool.busy, queued: this.pool.queued, capacity: this.pool.capacity };
  }

  /**
   * Checks the request and turns it into what node-llama-cpp takes, counting the templated prompt (tools
   * included). Everything a client can get wrong fails here, with a 400 naming the field, before admission.
   */
  private async plan(request: GenerationRequest): Promise<Plan> {
    const input = request.input;
    checkResponseFormat(request.responseFormat);
    if (input.kind === 'text') {
      if (request.tools !== undefined && request.tools.length > 0) {
        throw new ParlanceError('unsupported_parameter', 'Tools need a chat: a text completion cannot call them.', { param: 'tools' });
      }
      const tokens = await this.tokenize({ text: input.prompt }, input.prompt.length, () => this.model.tokenize(input.prompt));
      return { kind: 'text', prompt: input.prompt, tokens, promptTokens: tokens.length };
    }
    const functions = planFunctions(request.tools, request.toolChoice, request.parallelToolCalls);
    if (functions !== undefined && request.responseFormat !== undefined && request.responseFormat.type !== 'text') {
      // node-llama-cpp holds a reply to one grammar at a time: its function-call grammar or the format's.
      throw new ParlanceError('unsupported_parameter', 'The embedded engine cannot hold a reply to a response_format while the model may call tools; set tool_choice to "none" or leave response_format out.', {
        param: 'response_format',
      });
    }
    const ownEffort = wrapperForEffort(this.chatWrapper, request.reasoning);
    const wrapper = ownEffort ?? this.chatWrapper;
    let history = toChatHistory(input.messages);
    if (request.reasoning?.enabled === false && this.capabilities.has('reasoning')) skipThinking(history);
    if (functions === undefined && request.tools !== undefined && request.tools.length > 0) {
      // `none`: the tools stay in the prompt, documented as the template documents them, but cannot be called.
      history = [...wrapper.addAvailableFunctionsSystemMessageToHistory(history, toFunctions(request.tools), { documentParams: true })];
    }
    const { contextText } = wrapper.generateContextState({
      chatHistory: history,
      ...(functions === undefined ? {} : { availableFunctions: functions.functions, documentFunctionParams: true }),
    });
    const tokens = await this.tokenize({ json: contextText.toJSON() }, promptChars(input), () => contextText.tokenize(this.model.tokenizer));
    return { kind: 'chat', history, functions, wrapper, thoughtBudget: thoughtBudget(request.reasoning, ownEffort !== undefined), tokens, promptTokens: tokens.length };
  }

  async countTokens(request: GenerationRequest): Promise<number> {
    return (await this.plan(request)).promptTokens;
  }

  /**
   * A long prompt is tokenized on the tokenizer thread, so the event loop serves other requests meanwhile (the
   * same vocabulary, so the same tokens); a short one here, where it takes less than the round trip, and any
   * when the thread cannot serve.
   */
  private async tokenize(input: TokenizerInput, chars: number, here: () => Token[]): Promise<Token[]> {
    if (chars < offThreadChars) return here();
    this.tokenizer ??= new TokenizerThread(this.options.modelPath, (error) => this.options.log?.('warn', `${error.message}; long prompts are tokenized on the event loop`));
    if (!this.tokenizer.usable) return here();
    return this.tokenizer.tokenize(input).then((ids) => Array.from(ids, (id) => id as Token), here);
  }

  /**
   * Rejects before admission when the prompt, plus what was asked to generate, cannot fit. `lowerBound`: the
   * count is only a least number of tokens, from the characters, and the prompt was not tokenized.
   */
  private checkFits(promptTokens: number, sampling: SamplingOptions, lowerBound = false): number {
    const limit = this.contextLength;
    const wanted = sampling.maxTokens ?? 1;
    if (promptTokens + wanted > limit) {
      const prompt = lowerBound ? `at least ${promptTokens} in the prompt, from its length alone` : `${promptTokens} in the prompt`;
      const detail = sampling.maxTokens === undefined ? prompt : `${prompt} and ${wanted} to generate`;
      throw new ParlanceError('context_length_exceeded', `This model's maximum context length is ${limit} tokens, but the request needs ${lowerBound ? 'at least ' : ''}${promptTokens + wanted} (${detail}). Shorten the messages or lower max_tokens.`, {
        param: sampling.maxTokens === undefined ? 'messages' : 'max_tokens',
      });
    }
    return sampling.maxTokens ?? Math.min(this.options.defaultMaxTokens, limit - promptTokens);
  }

  async open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    // Tokenizing runs on the event loop (~0.5 s per MB): what cannot fit whatever its tokens are is refused
    // from its length alone, so that no prompt costs more than the context's worth of tokenizing.
    this.checkFits(Math.ceil(promptChars(request.input) / this.maxTokenChars), request.sampling, true);
    const plan = await this.plan(request);
    const promptTokens = plan.promptTokens;
    const maxTokens = this.checkFits(promptTokens, request.sampling);
    const sampling = samplingFor(this.model, request.sampling);
    const grammar = await grammarFor(this.llama, request.responseFormat);
    // The sequence whose KV cache already holds the longest start of this prompt: the next turn of a
    // conversation evaluates only its new tokens, even while other conversations take turns.
    const slot = await this.pool.acquire(signal, (candidate) => reusableTokens(candidate.sequence.contextTokens, plan.tokens));
    const stop = new AbortController();
    const onClientAbort = (): void => stop.abort();
    signal.addEventListener('abort', onClientAbort, { once: true });
    const channel = new EventChannel<ChatEvent>(() => stop.abort());
    const run = this.generate(slot, request, plan, { ...sampling, ...(grammar === undefined ? {} : { grammar }) }, maxTokens, stop.signal, channel).finally(() => {
      signal.removeEventListener('abort', onClientAbort);
      this.pool.release(slot);
      this.running.delete(run);
    });
    this.running.add(run);
    return { promptTokens, [Symbol.asyncIterator]: () => channel };
  }

  private async generate(
    slot: Slot,
    request: GenerationRequest,
    plan: Plan,
    { grammar, ...sampling }: LlamaSampling & { readonly grammar?: LlamaGrammar },
    maxTokens: number,
    signal: AbortSignal,
    channel: EventChannel<ChatEvent>,
  ): Promise<void> {
    let completionTokens = 0;
    let reasoningTokens = 0;
    let reason: FinishReason;
    const push = (event: ChatEvent): void => channel.push(event);
    const calls = new ToolCallEvents(push);
    let stopSequence: string | undefined;
    const inputTokensBefore = slot.sequence.tokenMeter.usedInputTokens;
    // node-llama-cpp generates one token past maxTokens when a template opens the thought on the reply's first
    // token; the chat path counts tokens itself and stops there (finish `length`, never more than asked).
    const limit = new AbortController();
    const common = {
      signal: AbortSignal.any([signal, limit.signal]),
      stopOnAbortSignal: true,
      maxTokens,
      ...sampling,
      ...(request.sampling.stop?.length ? { customStopTriggers: request.sampling.stop } : {}),
    };
    // A forced call needs the wrapper that starts every reply in a call, an effort level a wrapper of its own;
    // a LlamaChat is only a view of the sequence, so a request may have its own.
    const wrapper = plan.kind === 'chat' ? (plan.functions?.forced ? forcingCalls(plan.wrapper) : plan.wrapper) : this.chatWrapper;
    const chat = wrapper === this.chatWrapper ? slot.chat : new LlamaChat({ contextSequence: slot.sequence, chatWrapper: wrapper });
    try {
      if (plan.kind === 'text') {
        const result = await slot.completion.generateCompletionWithMeta(plan.prompt, {
          ...common,
          ...(grammar === undefined ? {} : { grammar }),
          onTextChunk: (text: string) => {
            if (text) push({ type: 'text-delta', text });
          },
          onToken: (tokens) => {
            completionTokens += tokens.length;
          },
        });
        reason = finishReasonOf(result.metadata.stopReason);
        stopSequence = stopSequenceOf(result.metadata);
      } else {
        const chatOptions = {
          ...common,
          ...(plan.thoughtBudget === undefined ? {} : { budgets: { thoughtTokens: plan.thoughtBudget } }),
          onResponseChunk: (chunk: LlamaChatResponseChunk) => {
            if (limit.signal.aborted) return;
            let { tokens, text } = chunk;
            const room = maxTokens - completionTokens;
            if (tokens.length > room) {
              tokens = tokens.slice(0, room);
              text = this.model.detokenize(tokens);
              limit.abort();
            }
            completionTokens += tokens.length;
            // Thought (and gpt-oss's commentary) segments are the model thinking, never part of the answer.
            if (chunk.type === 'segment') reasoningTokens += tokens.length;
            if (!text) return;
            push(chunk.type === 'segment' ? { type: 'reasoning-delta', text } : { type: 'text-delta', text });
          },
        };
        const functions = plan.functions;
        const result =
          functions === undefined
            ? await chat.generateResponse(plan.history, { ...chatOptions, ...(grammar === undefined ? {} : { grammar }) })
            : await chat.generateResponse(plan.history, {
                ...chatOptions,
                functions: functions.functions,
                documentFunctionParams: true,
                ...(functions.maxCalls === undefined ? {} : { maxParallelFunctionCalls: functions.maxCalls }),
                onFunctionCallParamsChunk: (chunk) => calls.onParamsChunk(chunk),
                onFunctionCall: (call) => calls.onCall(call.functionName),
              });
        reason = limit.signal.aborted && !signal.aborted ? 'length' : finishReasonOf(result.metadata.stopReason);
        // node-llama-cpp reports no tokens for calls; their text is what the model generated for them.
        if (calls.count > 0) completionTokens += this.model.tokenize(calls.text()).length;
        stopSequence = stopSequenceOf(result.metadata);
      }
    } catch (error) {
      if (signal.aborted) {
        reason = 'cancelled';
      } else if (limit.signal.aborted) {
        reason = 'length';
      } else {
        reason = 'error';
        push({ type: 'error', code: 'generation_failed', message: `the model failed while generating: ${(error as Error).message}` });
        this.options.log?.('error', `generation failed: ${(error as Error).stack ?? String(error)}`);
      }
    } finally {
      if (chat !== slot.chat) chat.dispose();
    }
    // A generation that failed or was cancelled may never have evaluated its prompt: no cached count then.
    const cachedPromptTokens = reason === 'error' || reason === 'cancelled' ? undefined : cachedPromptTokensOf(plan.promptTokens, slot.sequence.tokenMeter.usedInputTokens - inputTokensBefore);
    push({ type: 'usage', usage: { promptTokens: plan.promptTokens, completionTokens, ...(cachedPromptTokens === undefined ? {} : { cachedPromptTokens }), ...(reasoningTokens > 0 ? { reasoningTokens } : {}) } });
    push(stopSequence === undefined ? { type: 'finish', reason } : { type: 'finish', reason, stopSequence });
    channel.end();
  }

  async close(): Promise<void> {
    this.pool.close();
    await this.tokenizer?.close();
    await Promise.allSettled([...this.running]);
    await this.embeddingsPart?.close();
    await this.context.dispose();
    await this.model.dispose();
    if (this.options.llama === undefined) await this.llama.dispose();
  }
}
