import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyInstance } from 'fastify';
import type { TokenUsage } from '../engines/contract.js';
import { ParlanceError } from '../errors.js';

/** A key's limits per minute; 0 means none. */
export interface KeyLimits {
  readonly requestsPerMinute: number;
  readonly tokensPerMinute: number;
}

/** An API key as configured: its name, and limits of its own where the config file gives some. */
export interface LimitedKey {
  readonly name: string;
  readonly requestsPerMinute?: number | undefined;
  readonly tokensPerMinute?: number | undefined;
}

const SECONDS = 60;

/**
 * What was used over the last minute, in one-second buckets: a fixed 60 slots per key whatever the traffic,
 * and a retry time exact to the second.
 */
export class MinuteWindow {
  private readonly amounts = new Float64Array(SECONDS);
  /** The second (since the epoch) each slot counts; a slot from more than a minute ago counts nothing. */
  private readonly seconds = new Float64Array(SECONDS).fill(-Infinity);

  add(amount: number, nowSecond: number): void {
    const slot = nowSecond % SECONDS;
    if (this.seconds[slot] !== nowSecond) {
      this.seconds[slot] = nowSecond;
      this.amounts[slot] = 0;
    }
    this.amounts[slot] = (this.amounts[slot] ?? 0) + amount;
  }

  total(nowSecond: number): number {
    let sum = 0;
    for (let slot = 0; slot < SECONDS; slot++) if ((this.seconds[slot] ?? -Infinity) > nowSecond - SECONDS) sum += this.amounts[slot] ?? 0;
    return sum;
  }

  /** Whole seconds until the total falls below `limit` as old slots expire (at least 1 when it is not below now). */
  secondsUntilBelow(limit: number, nowSecond: number): number {
    let total = this.total(nowSecond);
    if (total < limit) return 0;
    // Slots expire oldest first: the one counting second s stops counting at s + 60.
    const live: [second: number, amount: number][] = [];
    for (let slot = 0; slot < SECONDS; slot++) {
      const second = this.seconds[slot] ?? -Infinity;
      if (second > nowSecond - SECONDS) live.push([second, this.amounts[slot] ?? 0]);
    }
    live.sort((a, b) => a[0] - b[0]);
    for (const [second, amount] of live) {
      total -= amount;
      if (total < limit) return second + SECONDS - nowSecond;
    }
    return SECONDS;
  }
}

interface KeyState {
  readonly limits: KeyLimits;
  readonly requests: MinuteWindow;
  readonly tokens: MinuteWindow;
}

/**
 * Per-key limits on generation requests and tokens per minute, as OpenAI's API has them: a key past either
 * gets 429 with `Retry-After` at once. Tokens are only known once a generation ends, so they are charged then;
 * a key is refused while its last minute's tokens are at or over its limit (one long reply may overshoot it,
 * and the next requests wait until the overshoot has rolled out of the window).
 */
export class KeyRateLimiter {
  private readonly keys = new Map<string, KeyState>();
  /** The key of the request a generation belongs to, carried from the route to the end of the generation. */
  private readonly current = new AsyncLocalStorage<string>();

  constructor(
    keys: readonly LimitedKey[],
    defaults: KeyLimits,
    private readonly clock: () => number = Date.now,
  ) {
    for (const key of keys) {
      const limits = { requestsPerMinute: key.requestsPerMinute ?? defaults.requestsPerMinute, tokensPerMinute: key.tokensPerMinute ?? defaults.tokensPerMinute };
      if (limits.requestsPerMinute > 0 || limits.tokensPerMinute > 0) this.keys.set(key.name, { limits, requests: new MinuteWindow(), tokens: new MinuteWindow() });
    }
  }

  /** True when some key has a limit. */
  get active(): boolean {
    return this.keys.size > 0;
  }

  private now(): number {
    return Math.floor(this.clock() / 1000);
  }

  /**
   * Counts one request for `keyName`, or throws `rate_limit_exceeded` when the key is at a limit. Returns the
   * `x-ratelimit-*` headers OpenAI's API sends (limit and what remains this minute).
   */
  admit(keyName: string): Record<string, string> {
    const state = this.keys.get(keyName);
    if (!state) return {};
    const now = this.now();
    const { requestsPerMinute, tokensPerMinute } = state.limits;
    const waits: { what: string; seconds: number }[] = [];
    if (requestsPerMinute > 0) waits.push({ what: `${requestsPerMinute} requests`, seconds: state.requests.secondsUntilBelow(requestsPerMinute, now) });
    if (tokensPerMinute > 0) waits.push({ what: `${tokensPerMinute} tokens`, seconds: state.tokens.secondsUntilBelow(tokensPerMinute, now) });
    const blocking = waits.filter((wait) => wait.seconds > 0);
    if (blocking.length > 0) {
      const seconds = Math.max(...blocking.map((wait) => wait.seconds));
      throw new ParlanceError('rate_limit_exceeded', `The API key '${keyName}' reached its limit of ${blocking.map((wait) => wait.what).join(' and ')} per minute; retry in ${seconds} s.`, { retryAfterSeconds: seconds });
    }
    state.requests.add(1, now);
    const headers: Record<string, string> = {};
    if (requestsPerMinute > 0) {
      headers['x-ratelimit-limit-requests'] = String(requestsPerMinute);
      headers['x-ratelimit-remaining-requests'] = String(Math.max(0, requestsPerMinute - state.requests.total(now)));
    }
    if (tokensPerMinute > 0) {
      headers['x-ratelimit-limit-tokens'] = String(tokensPerMinute);
      headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, tokensPerMinute - state.tokens.total(now)));
    }
    return headers;
  }

  /** Runs `next` (the rest of a request's handling) as `keyName`'s: generations it starts are charged to the key. */
  runAs(keyName: string, next: () => void): void {
    if (this.keys.has(keyName)) this.current.run(keyName, next);
    else next();
  }

  /** Charges a finished generation's tokens to the key of the request that started it, if any. */
  charge(usage: TokenUsage | undefined): void {
    const keyName = this.current.getStore();
    if (keyName === undefined || usage === undefined) return;
    this.keys.get(keyName)?.tokens.add(usage.promptTokens + usage.completionTokens, this.now());
  }
}

/** The routes that start a generation: only these are counted, so browsing the page's history costs nothing. */
const GENERATING_ROUTES = new Set([
  '/v1/chat/completions',
  '/v1/completions',
  '/completion',
  '/v1/responses',
  '/v1/embeddings',
  '/v1/rerank',
  '/rerank',
  '/v1/reranking',
  '/v1/messages',
  '/api/chat',
  '/api/generate',
  '/api/embed',
  ...['', '/parlance'].flatMap((prefix) => [`${prefix}/api/conversations/:id/messages`, `${prefix}/api/conversations/:id/messages/:messageId/regenerate`]),
]);

/** Applies the limiter to the generating routes, after the API key check has named the key. */
export function installRateLimits(app: FastifyInstance, limiter: KeyRateLimiter): void {
  if (!limiter.active) return;
  const limited = (url: string | undefined, method: string): boolean => method === 'POST' && url !== undefined && GENERATING_ROUTES.has(url);
  // Refused before the body is read: a client over its limit costs no parsing.
  app.addHook('onRequest', async (request, reply) => {
    if (request.apiKeyName === undefined || !limited(request.routeOptions.url, request.method)) return;
    reply.headers(limiter.admit(request.apiKeyName));
  });
  // The key is carried into the handler from here, after body parsing (whose socket callbacks would lose it).
  app.addHook('preHandler', (request, _reply, done) => {
    if (request.apiKeyName === undefined || !limited(request.routeOptions.url, request.method)) done();
    else limiter.runAs(request.apiKeyName, done);
  });
}
