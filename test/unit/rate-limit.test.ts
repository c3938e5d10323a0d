import { describe, expect, it } from 'vitest';
import { isParlanceError } from '../../src/errors.js';
import { KeyRateLimiter, MinuteWindow } from '../../src/http/rate-limit.js';

/** The error `admit` threw, or undefined when it admitted. */
function refusal(limiter: KeyRateLimiter, key: string): { code: string; retryAfterSeconds: number | undefined } | undefined {
  try {
    limiter.admit(key);
    return undefined;
  } catch (error) {
    if (!isParlanceError(error)) throw error;
    return { code: error.code, retryAfterSeconds: error.retryAfterSeconds };
  }
}

describe('MinuteWindow', () => {
  it('counts the last 60 seconds only, and says when old use has rolled out', () => {
    const window = new MinuteWindow();
    window.add(5, 1000);
    window.add(3, 1030);
    expect(window.total(1030)).toBe(8);
    expect(window.secondsUntilBelow(8, 1030)).toBe(30); // the 5 from second 1000 stop counting at 1060
    expect(window.secondsUntilBelow(4, 1030)).toBe(30);
    expect(window.secondsUntilBelow(3, 1030)).toBe(60); // the 3 from second 1030 stop counting at 1090
    expect(window.secondsUntilBelow(9, 1030)).toBe(0);
    expect(window.total(1059)).toBe(8);
    expect(window.total(1060)).toBe(3);
    expect(window.total(1090)).toBe(0);
    // A slot is reused a minute later without its old count.
    window.add(1, 1060);
    expect(window.total(1060)).toBe(4);
  });
});

describe('KeyRateLimiter', () => {
  it('admits up to the limit per key, then refuses with the wait until a slot frees', () => {
    let now = 1_000_000_000;
    const limiter = new KeyRateLimiter([{ name: 'a' }, { name: 'b', requestsPerMinute: 1 }, { name: 'c', requestsPerMinute: 0 }], { requestsPerMinute: 2, tokensPerMinute: 0 }, () => now);
    expect(limiter.admit('a')).toMatchObject({ 'x-ratelimit-limit-requests': '2', 'x-ratelimit-remaining-requests': '1' });
    now += 10_000;
    limiter.admit('a');
    expect(refusal(limiter, 'a')).toEqual({ code: 'rate_limit_exceeded', retryAfterSeconds: 50 });
    // Per-key override, and 0 meaning no limit for that key.
    limiter.admit('b');
    expect(refusal(limiter, 'b')?.code).toBe('rate_limit_exceeded');
    for (let i = 0; i < 10; i++) expect(limiter.admit('c')).toEqual({});
    // Refusals are not counted: once the first request rolls out, one more is admitted.
    now += 50_000;
    expect(refusal(limiter, 'a')).toBeUndefined();
    expect(refusal(limiter, 'a')?.retryAfterSeconds).toBe(10);
  });

  it('charges tokens to the key a generation runs as, and refuses it while over its tokens per minute', () => {
    let now = 2_000_000_000;
    const limiter = new KeyRateLimiter([{ name: 'a', tokensPerMinute: 100 }, { name: 'b', tokensPerMinute: 100 }], { requestsPerMinute: 0, tokensPerMinute: 0 }, () => now);
    limiter.runAs('a', () => limiter.charge({ promptTokens: 60, completionTokens: 50 }));
    // Outside any key's request nothing is charged.
    limiter.charge({ promptTokens: 1000, completionTokens: 1000 });
    expect(refusal(limiter, 'a')).toEqual({ code: 'rate_limit_exceeded', retryAfterSeconds: 60 });
    expect(refusal(limiter, 'b')).toBeUndefined();
    expect(limiter.admit('b')['x-ratelimit-remaining-tokens']).toBe('100');
    now += 60_000;
    expect(refusal(limiter, 'a')).toBeUndefined();
  });

  it('is inactive when no key has a limit', () => {
    expect(new KeyRateLimiter([{ name: 'a' }], { requestsPerMinute: 0, tokensPerMinute: 0 }).active).toBe(false);
    expect(new KeyRateLimiter([], { requestsPerMinute: 5, tokensPerMinute: 0 }).active).toBe(false);
  });
});
