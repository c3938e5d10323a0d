import type { Engine, Generation, GenerationRequest } from '../engines/contract.js';
import { ParlanceError } from './errors.js';

/** What the chat service needs from the engine registry. */
export interface EngineLookup {
  engineFor(modelId: string): Engine;
}

/**
 * The core every HTTP dialect goes through: picks the engine for a request,
 * admits it, and ties every generation to the server's lifetime so shutdown
 * can stop them all. Persistence of conversations hooks in here.
 */
export class ChatService {
  private readonly shutdown = new AbortController();

  constructor(private readonly engines: EngineLookup) {}

  open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    if (this.shutdown.signal.aborted) return Promise.reject(new ParlanceError('engine_unavailable', 'the server is shutting down'));
    const engine = this.engines.engineFor(request.model);
    return engine.open(request, AbortSignal.any([signal, this.shutdown.signal]));
  }

  /** Refuses new generations and cancels the running ones; each still ends with its `finish` event. */
  stopAll(): void {
    this.shutdown.abort(new ParlanceError('engine_unavailable', 'the server is shutting down'));
  }
}
