import { setTimeout as sleep } from 'node:timers/promises';
import type { Capability, ChatEvent, Engine, EngineLoad, FinishReason, Generation, GenerationInput, GenerationRequest, ModelInfo } from '../contract.js';

/** A script is deterministic, so a seed is honoured trivially: the same request gives the same reply. */
const scriptedCapabilities: ReadonlySet<Capability> = new Set<Capability>(['seed']);

/** One step of a script: a piece of text and how long to wait before emitting it. */
export interface ScriptStep {
  readonly text: string;
  readonly delayMs: number;
}

export interface ScriptedEngineOptions {
  readonly name?: string;
  readonly modelId?: string;
  /** Builds the reply for a request. Default: echo the last user message word by word. */
  readonly script?: (input: GenerationInput) => readonly ScriptStep[];
  /** Delay before each token of the default echo script. */
  readonly tokenDelayMs?: number;
}

/** Splits text into word-sized tokens that keep their leading whitespace, so joining them gives the text back. */
export function wordTokens(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

function lastUserText(input: GenerationInput): string {
  if (input.kind === 'text') return input.prompt;
  for (let i = input.messages.length - 1; i >= 0; i--) {
    const message = input.messages[i];
    if (message?.role === 'user') return message.content;
  }
  return '';
}

function inputTokenCount(input: GenerationInput): number {
  if (input.kind === 'text') return wordTokens(input.prompt).length;
  return input.messages.reduce((sum, message) => sum + wordTokens(message.content).length + 4, 0);
}

/**
 * A deterministic engine: no model, just a script. It serves `/stream-example`,
 * the UI tests (which need text they can predict) and the benchmarks (which
 * measure Parlance, not a model). It honours max tokens, stop strings and
 * cancellation exactly as a real engine must.
 */
export class ScriptedEngine implements Engine {
  readonly name: string;
  private readonly modelId: string;
  private readonly script: (input: GenerationInput) => readonly ScriptStep[];
  private active = 0;

  constructor(options: ScriptedEngineOptions = {}) {
    this.name = options.name ?? 'scripted';
    this.modelId = options.modelId ?? 'parlance-scripted';
    const delayMs = options.tokenDelayMs ?? 0;
    this.script = options.script ?? ((input) => wordTokens(lastUserText(input)).map((text) => ({ text, delayMs })));
  }

  models(): readonly ModelInfo[] {
    return [{ id: this.modelId, ownedBy: 'parlance', capabilities: scriptedCapabilities }];
  }

  load(): EngineLoad {
    return { active: this.active, queued: 0, capacity: Number.POSITIVE_INFINITY };
  }

  open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    const steps = this.script(request.input);
    const promptTokens = inputTokenCount(request.input);
    const engine = this;
    async function* run(): AsyncGenerator<ChatEvent> {
      engine.active++;
      let completionTokens = 0;
      let reason: FinishReason = 'stop';
      let emitted = '';
      let stopSequence: string | undefined;
      const stops = request.sampling.stop ?? [];
      try {
        for (const step of steps) {
          if (request.sampling.maxTokens !== undefined && completionTokens >= request.sampling.maxTokens) {
            reason = 'length';
            break;
          }
          if (step.delayMs > 0) await sleep(step.delayMs, undefined, { signal }).catch(() => undefined);
          if (signal.aborted) {
            reason = 'cancelled';
            break;
          }
          completionTokens++;
          const candidate = emitted + step.text;
          const stopAt = firstStop(candidate, stops);
          if (stopAt) {
            const text = candidate.slice(emitted.length, stopAt.index);
            if (text) yield { type: 'text-delta', text };
            stopSequence = stopAt.stop;
            break;
          }
          emitted = candidate;
          yield { type: 'text-delta', text: step.text };
        }
        yield { type: 'usage', usage: { promptTokens, completionTokens } };
        yield stopSequence === undefined ? { type: 'finish', reason } : { type: 'finish', reason, stopSequence };
      } finally {
        engine.active--;
      }
    }
    const generation: Generation = { promptTokens, [Symbol.asyncIterator]: run };
    return Promise.resolve(generation);
  }

  countTokens(request: GenerationRequest): Promise<number> {
    return Promise.resolve(inputTokenCount(request.input));
  }

  async close(): Promise<void> {}
}

/** The earliest stop string in `text`, and where it starts. */
function firstStop(text: string, stops: readonly string[]): { index: number; stop: string } | undefined {
  let best: { index: number; stop: string } | undefined;
  for (const stop of stops) {
    const index = text.indexOf(stop);
    if (index >= 0 && (best === undefined || index < best.index)) best = { index, stop };
  }
  return best;
}
