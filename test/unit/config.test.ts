import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../src/config/load.js';

describe('resolveConfig', () => {
  it('applies defaults, then file, then env, then flags', () => {
    expect(resolveConfig({}).port).toBe(8000);
    expect(resolveConfig({ file: { port: 9000 } }).port).toBe(9000);
    expect(resolveConfig({ file: { port: 9000 }, env: { PARLANCE_PORT: '9100' } }).port).toBe(9100);
    expect(resolveConfig({ file: { port: 9000 }, env: { PARLANCE_PORT: '9100' }, overrides: { port: 9200 } }).port).toBe(9200);
  });

  it('reads booleans from the environment the way people write them', () => {
    expect(resolveConfig({ env: { PARLANCE_DEMO: 'true' } }).demo).toBe(true);
    expect(resolveConfig({ env: { PARLANCE_EMBEDDED: '0' } }).embedded).toBe(false);
  });

  it('freezes the result', () => {
    const config = resolveConfig({});
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names the option, its flag and its env var when a value is invalid', () => {
    expect(() => resolveConfig({ env: { PARLANCE_THREADS: '-3' } })).toThrow(ConfigError);
    expect(() => resolveConfig({ env: { PARLANCE_THREADS: '-3' } })).toThrow(/threads \(--threads, PARLANCE_THREADS\)/);
  });

  it('rejects unknown keys in a config file', () => {
    expect(() => resolveConfig({ file: { prot: 1 } })).toThrow(/prot/);
  });
});
