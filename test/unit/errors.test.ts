import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { errorRegistry } from '../../src/errors.js';

describe('the error registry and docs/errors.md', () => {
  it('list the same codes with the same status, type and description', async () => {
    const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \| ([a-z_]+) \| (.+) \|$/gm)].map((m) => ({ code: m[1], status: Number(m[2]), type: m[3], summary: m[4] }));
    const registry = Object.entries(errorRegistry).map(([code, entry]) => ({ code, status: entry.status, type: entry.type, summary: entry.summary }));
    expect(rows).toEqual(registry);
  });
});
