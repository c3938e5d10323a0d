import { ParlanceError, isParlanceError } from '../../errors.js';
import type { EmbeddingRequest, EmbeddingResult, Engine, EngineLoad, Generation, GenerationRequest, ModelInfo, RerankRequest, RerankResult } from '../contract.js';

export interface BalancedEngineOptions {
  readonly name: string;
  /** Engines serving the same model ids; the balancer owns them and closes them. */
  readonly engines: readonly Engine[];
  /** How long an engine that failed before its first byte is passed over. Default 30 000. */
  readonly cooldownMs?: number;
  /** Injectable clock for tests. */
  readonly now?: () => number;
}

interface Member {
  readonly engine: Engine;
  /** When `open` last failed in a way that says the engine itself is unwell; 0 when healthy. */
  failedAt: number;
  /** How many times `open` failed so, since start. */
  failures: number;
}

/** One upstream as an operator sees it (`/metrics`). */
export interface UpstreamHealth {
  readonly name: string;
  /** Passed over for now: it failed less than the cool-down ago. */
  readonly coolingDown: boolean;
  readonly failures: number;
}

/**
 * Spreads requests over several engines that serve the same models: the one
 * with the fewest outstanding requests wins, engines that recently failed are
 * passed over for a cool-down, and a request whose `open` failed for an
 * upstream reason is tried once more on another engine. Only `open` failures
 * are retried: once a stream has started its errors are in-stream, and
 * replaying a half-delivered answer would duplicate text.
 */
export class BalancedEngine implements Engine {
  readonly name: string;
  private readonly members: Member[];
  private readonly cooldownMs: number;
  private readonly now: () => number;
  /** Rotates the starting point so ties do not all land on the first engine. */
  private cursor = 0;

  constructor(options: BalancedEngineOptions) {
    if (options.engines.length === 0) throw new Error(`balanced engine "${options.name}" needs at least one engine`);
    this.name = options.name;
    this.members = options.engines.map((engine) => ({ engine, failedAt: 0, failures: 0 }));
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /** Each member's cool-down state and failures. */
  health(): readonly UpstreamHealth[] {
    const now = this.now();
    return this.members.map(({ engine, failedAt, failures }) => ({ name: engine.name, coolingDown: failedAt !== 0 && now - failedAt < this.cooldownMs, failures }));
  }

  /** The union of the members' models; the first member to list an id describes it. */
  models(): readonly ModelInfo[] {
    const seen = new Map<string, ModelInfo>();
    for (const { engine } of this.members) {
      for (const model of engine.models()) if (!seen.has(model.id)) seen.set(model.id, model);
    }
    return [...seen.values()];
  }

  /** Runs the members' model discovery, where they have one (an upstream that was down at start may be back). */
  async discover(): Promise<void> {
    await Promise.all(
      this.members.map(({ engine }) => (hasDiscover(engine) ? engine.discover() : undefined)),
    );
  }

  load(): EngineLoad {
    let active = 0;
    let queued = 0;
    let capacity = 0;
    for (const { engine } of this.members) {
      const load = engine.load();
      active += load.active;
      queued += load.queued;
      capacity += load.capacity;
    }
    return { active, queued, capacity };
  }

  open(request: GenerationRequest, signal: AbortSignal): Promise<Generation> {
    return this.onMember(request.model, signal, (engine) => engine.open(request, signal));
  }

  embed(request: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResult> {
    return this.onMember(request.model, signal, (engine) => {
      if (!engine.embed) throw new ParlanceError('unsupported_parameter', `The model '${request.model}' cannot embed text.`, { param: 'model' });
      return engine.embed(request, signal);
    });
  }

  rerank(request: RerankRequest, signal: AbortSignal): Promise<RerankResult> {
    return this.onMember(request.model, signal, (engine) => {
      if (!engine.rerank) throw new ParlanceError('unsupported_parameter', `The model '${request.model}' cannot rerank.`, { param: 'model' });
      return engine.rerank(request, signal);
    });
  }

  /** Runs `call` on the best member serving `model`, once more on another when it fails for an upstream reason. */
  private async onMember<T>(model: string, signal: AbortSignal, call: (engine: Engine) => Promise<T>): Promise<T> {
    const candidates = this.members.filter((member) => member.engine.models().some((info) => info.id === model));
    const first = this.pick(candidates);
    if (first === undefined) throw new ParlanceError('model_not_found', `no engine of "${this.name}" serves model "${model}"`, { param: 'model' });
    try {
      return await this.callOn(first, call);
    } catch (error) {
      if (!isRetryable(error) || signal.aborted) throw error;
      const second = this.pick(candidates.filter((member) => member !== first));
      if (second === undefined) throw error;
      return await this.callOn(second, call);
    }
  }

  close(): Promise<void> {
    return Promise.all(this.members.map(({ engine }) => engine.close())).then(() => undefined);
  }

  private async callOn<T>(member: Member, call: (engine: Engine) => Promise<T>): Promise<T> {
    try {
      const result = await call(member.engine);
      member.failedAt = 0;
      return result;
    } catch (error) {
      if (isRetryable(error)) {
        member.failedAt = this.now();
        member.failures++;
      }
      throw error;
    }
  }

  /**
   * Fewest outstanding requests among the members not cooling down; when all
   * are cooling down, the one that failed longest ago, since failing outright
   * would turn a brief upstream blip into a full outage.
   */
  private pick(candidates: readonly Member[]): Member | undefined {
    const count = candidates.length;
    if (count === 0) return undefined;
    const now = this.now();
    const start = this.cursor++ % count;
    let best: Member | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    let oldestFailure: Member | undefined;
    for (let i = 0; i < count; i++) {
      const member = candidates[(start + i) % count] as Member;
      if (member.failedAt !== 0 && now - member.failedAt < this.cooldownMs) {
        if (oldestFailure === undefined || member.failedAt < oldestFailure.failedAt) oldestFailure = member;
        continue;
      }
      const load = member.engine.load();
      const outstanding = load.active + load.queued;
      if (outstanding < bestLoad) {
        best = member;
        bestLoad = outstanding;
      }
    }
    return best ?? oldestFailure;
  }
}

function hasDiscover(engine: Engine): engine is Engine & { discover(): Promise<void> } {
  return typeof (engine as { discover?: unknown }).discover === 'function';
}

/** 5xx, connection failures and timeouts say the engine is unwell; a 4xx is about the request and would fail anywhere. */
function isRetryable(error: unknown): boolean {
  if (!isParlanceError(error)) return true;
  return error.status >= 500;
}
