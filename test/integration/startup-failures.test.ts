/**
 * A start that cannot succeed ends in one line that says why and which flag changes it, with a non-zero
 * exit and no stack trace (unless --debug). A real `parlance serve` process each time.
 */
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../fixtures/cli.js';
import { tempDirs } from '../fixtures/temp-dirs.js';

const tempDir = tempDirs('parlance-startup-');

/** `serve` without the embedded engine (nothing to load), in a fresh data dir, plus `args`. */
async function serve(args: readonly string[]) {
  const dir = await tempDir();
  return runCli(['serve', '--no-embedded', '--scripted', '--host', '127.0.0.1', '--data-dir', join(dir, 'data'), ...args], { env: { PARLANCE_PORT: '0' } });
}

function expectOneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0] ?? '';
}

describe('start-up failures', () => {
  it('a taken port: says which port, who holds it, and the flag to pick another', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const address = holder.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const result = await serve(['--port', String(port)]);
      expect(result.code).toBe(1);
      const line = expectOneLine(result.stderr);
      expect(line).toMatch(new RegExp(`^parlance: port ${port} on 127\\.0\\.0\\.1 is taken`));
      // This test's own process holds it, and /proc says so (Linux).
      if (process.platform === 'linux') expect(line).toContain(`(pid ${process.pid})`);
      expect(line).toContain('--port');
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });

  it('a store URL of no known kind: names it and the option', async () => {
    const result = await serve(['--store', 'mysql://db/parlance']);
    expect(result.code).toBe(1);
    expect(expectOneLine(result.stderr)).toBe('parlance: Unsupported store URL "mysql://db/parlance": use sqlite:PATH, a file path, or postgres://… (--store, PARLANCE_STORE)');
  });

  it('a PostgreSQL store that cannot be reached: one line, the password left out', async () => {
    const result = await serve(['--store', 'postgres://parlance:hunter2-secret@127.0.0.1:1/parlance']);
    expect(result.code).toBe(1);
    const line = expectOneLine(result.stderr);
    expect(line).toBe('parlance: cannot open the conversation store postgres://parlance:***@127.0.0.1:1/parlance: connection refused (ECONNREFUSED); check --store <url> (PARLANCE_STORE)');
    expect(result.stdout + result.stderr).not.toContain('hunter2');
  });

  it('a data dir that cannot be created: names it and --data-dir', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a-file'), 'not a directory');
    const result = await serve(['--data-dir', join(dir, 'a-file', 'data')]);
    expect(result.code).toBe(1);
    expect(expectOneLine(result.stderr)).toBe(
      `parlance: cannot use the data directory ${join(dir, 'a-file', 'data')}: a part of the path is not a directory (ENOTDIR); pick another with --data-dir <path> (PARLANCE_DATA_DIR)`,
    );
  });

  it('a model file that will not load: names the file and --model', async () => {
    const dir = await tempDir();
    // The GGUF magic, then nothing llama.cpp can read.
    const broken = join(dir, 'broken.gguf');
    await writeFile(broken, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(64, 0xff)]));
    const result = await runCli(['serve', '--host', '127.0.0.1', '--model', broken, '--data-dir', join(dir, 'data'), '--models-dir', join(dir, 'models')], { env: { PARLANCE_PORT: '0' }, timeoutMs: 60_000 });
    expect(result.code).toBe(1);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(result.stderr).toMatch(new RegExp(`^parlance: cannot load the model ${broken.replace(/[.]/g, '\\.')}: .+; pass another with --model <ref> \\(PARLANCE_MODEL\\)$`, 'm'));
  });

  it('--debug shows the stack as well', async () => {
    const result = await serve(['--debug', '--store', 'mysql://db/parlance']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^\s+at /m);
    expect(result.stderr).toContain('parlance: Unsupported store URL');
  });
});
