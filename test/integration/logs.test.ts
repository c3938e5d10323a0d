/**
 * What `parlance serve` writes to its log: short human lines on a terminal, pino's JSON lines anywhere
 * else (a container, a pipe to a collector); one line per request, when it is done. Real processes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { localBuilds } from '../../src/engines/llama-cpp/local-build.js';
import { startChild, type ChildServer } from '../adversarial/helpers.js';
import { startPtyCli } from '../fixtures/cli.js';
import { freePort } from '../fixtures/net.js';
import { tempDirs } from '../fixtures/temp-dirs.js';

const dataDir = tempDirs('parlance-logs-');
const children: ChildServer[] = [];
afterAll(() => {
  for (const child of children) if (child.child.exitCode === null) child.child.kill('SIGKILL');
});

describe('the log format', () => {
  it('off a terminal: one JSON object per line, the first short, and one line per request with status and duration', async () => {
    const child = await startChild(['--no-embedded', '--scripted', '--data-dir', await dataDir()]);
    children.push(child);
    expect((await fetch(`${child.url}/v1/models`)).status).toBe(200);
    expect((await fetch(`${child.url}/v1/models/no-such-model`)).status).toBe(404);
    child.child.kill('SIGTERM');
    await child.exited(10_000);
    const lines = child.output().trim().split('\n');
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]!.length).toBeLessThan(200);
    expect(records[0]).toMatchObject({ level: 30, msg: expect.stringMatching(/^Parlance \d+\.\d+\.\d+/) as unknown });
    const requests = records.filter((record) => typeof record['path'] === 'string' && String(record['path']).startsWith('/v1/models'));
    expect(requests.map((record) => [record['method'], record['path'], record['status']])).toEqual([
      ['GET', '/v1/models', 200],
      ['GET', '/v1/models/no-such-model', 404],
    ]);
    for (const record of requests) {
      expect(record).toMatchObject({ level: 30, reqId: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown, ms: expect.any(Number) as unknown });
    }
    // startChild polled /ready: probes are logged below info, so they do not bury the requests.
    expect(records.some((record) => record['path'] === '/ready')).toBe(false);
  });

  it('on a terminal: short human lines, no JSON, the URL and each request in words', async () => {
    const port = await freePort();
    const server = startPtyCli(['serve', '--no-embedded', '--scripted', '--port', String(port), '--data-dir', await dataDir()]);
    try {
      await server.waitFor(/serving parlance-scripted: open http:\/\/127\.0\.0\.1:\d+/);
      expect((await fetch(`http://127.0.0.1:${port}/v1/models`)).status).toBe(200);
      await server.waitFor(/GET \/v1\/models 200 \d+ ms/);
      const lines = server.screen().trim().split('\n');
      expect(lines.some((line) => line.trimStart().startsWith('{'))).toBe(false);
      for (const line of lines) {
        expect(line).toMatch(/^\[\d\d:\d\d:\d\d\] (INFO|WARN|DEBUG|ERROR): /);
        expect(line.length).toBeLessThan(200);
      }
      expect(lines.filter((line) => line.includes('/v1/models'))).toHaveLength(1);
    } finally {
      server.type('\x03');
      await server.exited(10_000);
      server.kill();
    }
  });

  it('names the llama.cpp binary it loaded, and on the prebuilt CPU one how to build a faster one', async () => {
    const child = await startChild(['--demo', '--gpu', 'off', '--data-dir', await dataDir()]);
    children.push(child);
    child.child.kill('SIGTERM');
    await child.exited(10_000);
    const records = child.output().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const line = records.find((record) => String(record['msg']).startsWith('llama.cpp: '));
    const prebuilt = localBuilds().length === 0;
    expect(line?.['msg']).toMatch(prebuilt ? /^llama\.cpp: prebuilt binary \(CPU\), .*'parlance engine build' compiles a faster one/ : /^llama\.cpp: local build binary \(CPU\), (?!.*engine build)/);
  });
});
