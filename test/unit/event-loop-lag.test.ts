/**
 * The overload check's timer runs only while there is work: armed by work, it stops at its first sample with
 * nothing busy, so an idle server's event loop is never woken for it; while work runs it still sees a loop held
 * back, and stays armed until the loop is on time again.
 */
import { describe, expect, it } from 'vitest';
import { EventLoopLag } from '../../src/http/event-loop-lag.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Holds the event loop for `ms`, `times` times, letting timers run in between. */
async function holdLoop(ms: number, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const until = performance.now() + ms;
    while (performance.now() < until);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('EventLoopLag', () => {
  it('is not armed until work arms it, and disarms itself once nothing is busy', async () => {
    let busy = true;
    const lag = new EventLoopLag(20, () => busy);
    expect(lag.armed).toBe(false);
    lag.arm();
    expect(lag.armed).toBe(true);
    await sleep(60);
    expect(lag.armed).toBe(true); // still busy: still sampling
    busy = false;
    for (let i = 0; i < 50 && lag.armed; i++) await sleep(20);
    expect(lag.armed).toBe(false);
    lag.arm(); // the next request
    expect(lag.armed).toBe(true);
    lag.stop();
  });

  it('sees a loop held back while there is work, and recovers once it is calm', async () => {
    const lag = new EventLoopLag(20, () => true);
    lag.arm();
    for (let i = 0; i < 40 && !lag.overloaded; i++) await holdLoop(60, 1);
    expect(lag.overloaded).toBe(true);
    for (let i = 0; i < 50 && lag.overloaded; i++) await sleep(20);
    expect(lag.overloaded).toBe(false);
    lag.stop();
  });

  it('keeps sampling while overloaded even when the work is gone, so that the state clears', async () => {
    let busy = true;
    const lag = new EventLoopLag(20, () => busy);
    lag.arm();
    for (let i = 0; i < 40 && !lag.overloaded; i++) await holdLoop(60, 1);
    expect(lag.overloaded).toBe(true);
    busy = false;
    for (let i = 0; i < 50 && lag.armed; i++) await sleep(20);
    expect(lag.overloaded).toBe(false);
    expect(lag.armed).toBe(false);
  });
});
