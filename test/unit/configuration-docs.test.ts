import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { configurationReference } from '../../src/config/reference.js';

describe('docs/configuration.md', () => {
  it('lists every option exactly as the schema declares it (run `npm run docs:config` after changing one)', async () => {
    const doc = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(doc).toBe(configurationReference());
  });
});
