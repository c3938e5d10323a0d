import { ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { platform } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLlama } from '../../src/engines/llama-cpp/engine.js';
import { localBuilds } from '../../src/engines/llama-cpp/local-build.js';
import { tempDirs } from '../fixtures/temp-dirs.js';

const tempDir = tempDirs('parlance-binary-check-');

/** Opens the CPU binding with passed checks remembered in `dataDir`; returns how many processes it started. */
async function open(dataDir: string): Promise<{ processes: number; gpu: unknown }> {
  // Every process Node starts goes through this (untyped) method, fork's included.
  const prototype = ChildProcess.prototype as unknown as { spawn: (this: ChildProcess, ...args: unknown[]) => unknown };
  const spawn = prototype.spawn;
  let processes = 0;
  prototype.spawn = function (...args) {
    processes++;
    return spawn.apply(this, args);
  };
  try {
    const llama = await openLlama({ gpu: 'off', dataDir });
    const gpu = llama.gpu;
    await llama.dispose();
    return { processes, gpu };
  } finally {
    prototype.spawn = spawn;
  }
}

// node-llama-cpp tests a prebuilt binary in a process of its own on Linux; a local build made here it does not test.
describe.skipIf(platform() !== 'linux' || localBuilds().length > 0)('the binary check of the prebuilt llama.cpp binary', () => {
  it('runs once per data directory: a later start loads the binary without a test process', async () => {
    const dataDir = await tempDir();
    const first = await open(dataDir);
    expect(first.processes).toBeGreaterThan(0);
    expect(first.gpu).toBe(false);
    const remembered = JSON.parse(await readFile(join(dataDir, 'binary-checks.json'), 'utf8')) as { passed: string[] };
    expect(remembered.passed).toHaveLength(1);

    const second = await open(dataDir);
    expect(second.processes).toBe(0);
    expect(second.gpu).toBe(false);
  });

  it('tests again when what is remembered is about another binary, Node or CPU, or cannot be read', async () => {
    const dataDir = await tempDir();
    await writeFile(join(dataDir, 'binary-checks.json'), JSON.stringify({ passed: ['0'.repeat(64)] }));
    expect((await open(dataDir)).processes).toBeGreaterThan(0);
    await writeFile(join(dataDir, 'binary-checks.json'), '{ not json');
    expect((await open(dataDir)).processes).toBeGreaterThan(0);
    // The damaged file was replaced by one that remembers this binary.
    expect((await open(dataDir)).processes).toBe(0);
  });
});
