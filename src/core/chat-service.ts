import type { ChatEvent, Engine, FinishReason, Generation, GenerationRequest, TokenUsage } from '../engines/contract.js';
import { ParlanceError, isParlanceError, type ErrorCode } from './errors.js';

/** What the chat service needs from the engine registry. */
export interface EngineLookup {
  engineFor(modelId: string): Engine;
}

/** Told about every generation; metrics implement it. All times in seconds. */
export interface GenerationObserver {
  admitted(engine: string, model: string): void;
  rejected(engine: string, code: ErrorCode): void;
  firstToken(engine: string, seconds: number): void;
  interToken(engine: string, seconds: number): void;
  finished(engine: string, model: string, reason: FinishReason, usage: TokenUsage | undefined, errorCode: ErrorCode | undefined): void;
}

export interface ChatServiceOptions {
  readonly observer?: GenerationObserver;
  /** The longest a generation may run; it is then cancelled. */
  readonly deadlineMs?: number;
}

/**
 * The core every HTTP dialect goes through: picks the engine for a request,
 * admits it, bounds it in time, and ties it to the server's lifetime so
 * shutdown can stop them all.
 */
export class ChatService {
  private readonly shutdown = new AbortController();

  constructor(
    private readonly engines: EngineLookup,
    private readonly options: ChatServiceOptions = {},
  ) {}

  async open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    if (this.shutdown.signal.aborted) throw new ParlanceError('engine_unavailable', 'the server is shutting down');
    const engine = this.engines.engineFor(request.model);
    const signals = [signal, this.shutdown.signal];
    if (this.options.deadlineMs !== undefined) signals.push(AbortSignal.timeout(this.options.deadlineMs));
    const observer = this.options.observer;
    if (!observer) return engine.open(request, AbortSignal.any(signals));
    let generation: Generation;
    try {
      generation = await engine.open(request, AbortSignal.any(signals));
    } catch (error) {
      observer.rejected(engine.name, isParlanceError(error) ? error.code : 'internal_error');
      throw error;
    }
    observer.admitted(engine.name, request.model);
    return observed(generation, engine.name, request.model, observer);
  }

  /** Refuses new generations and cancels the running ones; each still ends with its `finish` event. */
  stopAll(): void {
    this.shutdown.abort(new ParlanceError('engine_unavailable', 'the server is shutting down'));
  }
}

/**
 * Wraps a generation's iterator to time its tokens. A plain iterator with one
 * `then` per event, not an async generator, keeps the per-token cost small.
 */
function observed(generation: Generation, engine: string, model: string, observer: GenerationObserver): Generation {
  return {
    promptTokens: generation.promptTokens,
    [Symbol.asyncIterator](): AsyncIterator<ChatEvent> {
      const inner = generation[Symbol.asyncIterator]();
      const started = performance.now();
      let last = 0;
      let usage: TokenUsage | undefined;
      let errorCode: ErrorCode | undefined;
      const watch = (result: IteratorResult<ChatEvent>): IteratorResult<ChatEvent> => {
        if (result.done) return result;
        const event = result.value;
        if (event.type === 'text-delta') {
          const now = performance.now();
          if (last === 0) observer.firstToken(engine, (now - started) / 1000);
          else observer.interToken(engine, (now - last) / 1000);
          last = now;
        } else if (event.type === 'usage') usage = event.usage;
        else if (event.type === 'error') errorCode = event.code;
        else observer.finished(engine, model, event.reason, usage, errorCode);
        return result;
      };
      return {
        next: () => inner.next().then(watch),
        return: (value?: unknown) => (inner.return ? inner.return(value) : Promise.resolve({ done: true as const, value: undefined })),
      };
    },
  };
}
