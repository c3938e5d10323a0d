import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/main.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../fixtures/net.js';

const run = promisify(execFile);

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

describe('when no model was named and the default cannot be downloaded', () => {
  let server: RunningServer | undefined;
  afterAll(async () => server?.close());

  it("still serves, on the tiny model, and says so in /health (which the page's banner reads)", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parlance-offline-'));
    dirs.push(dir);
    const config = resolveConfig({ env: {}, overrides: { port: 0, modelsDir: dir, dataDir: join(dir, 'data'), logLevel: 'silent', contextSize: 512, sequences: 1 } });
    server = await startServer(config, { env: { HF_ENDPOINT: `http://127.0.0.1:${await freePort()}` } });
    const health = (await (await fetch(`${server.url}/health`)).json()) as { demo: boolean; notices: { message: string }[]; models: { id: string }[] };
    expect(health.demo).toBe(true);
    expect(health.notices[0]?.message).toMatch(/random text/);
    expect(health.notices[0]?.message).toMatch(/--model/);
    // Said once, in sentences: no doubled punctuation where the reason ends.
    expect(health.notices[0]?.message).not.toMatch(/\.\)\.|\)\.\)|\.\./);
    expect(health.models.map((m) => m.id)).toEqual(['parlance-tiny']);
    // Everything but the words works: a chat streams.
    const reply = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'parlance-tiny', max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(reply.status).toBe(200);
  });
});

describe('the CLI, when the model the user named cannot be had', () => {
  it('exits non-zero with one clear message naming the flag for a local file, and no stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parlance-cli-'));
    dirs.push(dir);
    const url = `http://127.0.0.1:${await freePort()}/missing.gguf`;
    const result = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--model', url, '--port', '0', '--models-dir', dir, '--data-dir', join(dir, 'data')], { env: { ...process.env, PARLANCE_LOG_LEVEL: 'silent' } }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(url);
    expect(result.stderr).toMatch(/cannot connect/);
    expect(result.stderr).toContain('--model /path/to/model.gguf');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('rejects a local file that is not a GGUF the same way', async () => {
    // Its own data dir: the default one is this machine's user's, whatever its schema.
    const dir = await mkdtemp(join(tmpdir(), 'parlance-cli-'));
    dirs.push(dir);
    const result = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--model', 'package.json', '--port', '0', '--data-dir', join(dir, 'data')], { env: { ...process.env, PARLANCE_LOG_LEVEL: 'silent' } }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/not a GGUF/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
