/**
 * The sampling settings' bounds are declared twice, by design: in the API's schema (src/protocol, which the
 * page imports) and in the store's (which may import only its contract), so that the store takes nothing the
 * API would refuse. This keeps the two in step, value by value at every edge.
 */
import { describe, expect, it } from 'vitest';
import { settingsSchema as apiSchema } from '../../src/protocol/conversations.js';
import { settingsSchema as storeSchema } from '../../src/store/kysely/validation.js';

const probes: Record<string, readonly unknown[]> = {
  maxTokens: [0, 1, 1.5, 1_048_576, 1_048_577, -1],
  temperature: [-0.01, 0, 2, 2.01, Number.NaN],
  topP: [0, 0.001, 1, 1.01],
  topK: [-1, 0, 1.5, 1_000_000, 1_000_001],
  minP: [-0.01, 0, 1, 1.01],
  presencePenalty: [-2.01, -2, 2, 2.01],
  frequencyPenalty: [-2.01, -2, 2, 2.01],
  repeatPenalty: [0, 0.01, 2, 2.01],
  seed: [0.5, -(2 ** 53), 2 ** 53, 2 ** 53 + 2, Number.MAX_VALUE],
  stop: [[], [''], ['a'], ['x'.repeat(256)], ['x'.repeat(257)], ['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd', 'e'], 'a'],
};

describe('the sampling settings bounds', () => {
  it('name the same fields in the API and the store', () => {
    expect(Object.keys(storeSchema.shape).sort()).toEqual(Object.keys(apiSchema.shape).sort());
    expect(Object.keys(probes).sort()).toEqual(Object.keys(apiSchema.shape).sort());
  });

  it.each(Object.entries(probes))('accept and refuse the same values of %s', (key, values) => {
    for (const value of values) {
      const settings = { [key]: value };
      expect(storeSchema.safeParse(settings).success, `${key} = ${JSON.stringify(value)}`).toBe(apiSchema.safeParse(settings).success);
    }
  });
});
