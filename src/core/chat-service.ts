import type { ChatEvent, Engine, FinishReason, Generation, GenerationRequest, TokenUsage } from '../engines/contract.js';
import { ParlanceError, isParlanceError, type ErrorCode } from '../errors.js';
import { BoundedRuns } from './bounded-runs.js';
import { assertSupported } from './capabilities.js';

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
  /** The generations admitted or waiting for admission (aborted by stopAll). */
  private readonly runs: BoundedRuns;

  constructor(
    private readonly engines: EngineLookup,
    private readonly options: ChatServiceOptions = {},
  ) {
    this.runs = new BoundedRuns(options.deadlineMs, 'The generation reached its deadline.');
  }

  async open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    this.runs.assertOpen();
    const engine = this.engines.engineFor(request.model);
    const model = engine.models().find((candidate) => candidate.id === request.model);
    if (model) assertSupported(request, model);
    const run = this.runs.start(signal);

    const observer = this.options.observer;
    let generation: Generation;
    try {
      generation = await engine.open(request, run.signal);
    } catch (error) {
      run.release();
      // Aborted before admission (while queued): the caller left, the server is stopping, or the deadline came.
      // The first is no rejection; the others get their own codes instead of the abort's bare reason.
      if (signal.aborted && !isParlanceError(error)) throw error;
      const cause =
        run.deadlineReached && !(isParlanceError(error) && error.code !== 'upstream_timeout')
          ? new ParlanceError('upstream_timeout', `The request reached its deadline (${Math.round((this.options.deadlineMs ?? 0) / 1000)} s) before the engine could take it.`, { cause: error })
          : error;
      observer?.rejected(engine.name, isParlanceError(cause) ? cause.code : 'internal_error');
      throw cause;
    }
    observer?.admitted(engine.name, request.model);
    return tracked(generation, run.release, observer === undefined ? undefined : { engine: engine.name, model: request.model, observer });
  }

  /** Refuses new generations and cancels the running ones (and those waiting); each still ends with its `finish` event. */
  stopAll(): void {
    this.runs.stopAll();
  }
}

/**
 * Wraps a generation's iterator to release its bounds (deadline timer, listeners) when it ends and, with an
 * observer, to time its tokens. A plain iterator with one `then` per event, not an async generator, keeps
 * the per-token cost small.
 */
function tracked(generation: Generation, release: () => void, watch: { engine: string; model: string; observer: GenerationObserver } | undefined): Generation {
  return {
    promptTokens: generation.promptTokens,
    [Symbol.asyncIterator](): AsyncIterator<ChatEvent> {
      const inner = generation[Symbol.asyncIterator]();
      const started = performance.now();
      let last = 0;
      let usage: TokenUsage | undefined;
      let errorCode: ErrorCode | undefined;
      const see = (result: IteratorResult<ChatEvent>): IteratorResult<ChatEvent> => {
        if (result.done) {
          release();
          return result;
        }
        const event = result.value;
        if (event.type === 'finish') release();
        if (!watch) return result;
        const { engine, model, observer } = watch;
        // Reasoning and tool-call arguments are generated tokens too: a reply of only calls still has a first token.
        if (event.type === 'text-delta' || event.type === 'reasoning-delta' || event.type === 'tool-call-delta') {
          const now = performance.now();
          if (last === 0) observer.firstToken(engine, (now - started) / 1000);
          else observer.interToken(engine, (now - last) / 1000);
          last = now;
        } else if (event.type === 'usage') usage = event.usage;
        else if (event.type === 'error') errorCode = event.code;
        else if (event.type === 'finish') observer.finished(engine, model, event.reason, usage, errorCode);
        return result;
      };
      return {
        next: () => inner.next().then(see),
        return: (value?: unknown) => {
          release();
          return inner.return ? inner.return(value) : Promise.resolve({ done: true as const, value: undefined });
        },
      };
    },
  };
}
