import { describe, expect, it } from 'vitest';
import { SlotPool } from '../../src/engines/llama-cpp/sequence-pool.js';

const signal = new AbortController().signal;

describe('SlotPool: which free slot a request gets', () => {
  it('takes the slot its affinity scores highest', async () => {
    const pool = new SlotPool(['a', 'b', 'c'], 0);
    const score = { a: 0, b: 5, c: 2 } as const;
    expect(await pool.acquire(signal, (slot) => score[slot as keyof typeof score])).toBe('b');
  });

  it('on a tie or without an affinity, takes the least recently released slot, so an idle cache lasts longest', async () => {
    const pool = new SlotPool(['a', 'b', 'c'], 0);
    const all = [await pool.acquire(signal), await pool.acquire(signal), await pool.acquire(signal)];
    expect(all).toEqual(['a', 'b', 'c']);
    pool.release('c');
    pool.release('a');
    pool.release('b');
    expect(await pool.acquire(signal, () => 0)).toBe('c');
    expect(await pool.acquire(signal)).toBe('a');
    pool.release('c');
    expect(await pool.acquire(signal)).toBe('b');
  });

  it('hands a released slot to the first waiter, whatever its cache holds', async () => {
    const pool = new SlotPool(['a'], 2);
    await pool.acquire(signal);
    const first = pool.acquire(signal, () => 0);
    const second = pool.acquire(signal, () => 100);
    pool.release('a');
    expect(await first).toBe('a');
    pool.release('a');
    expect(await second).toBe('a');
  });
});
