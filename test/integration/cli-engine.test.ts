/**
 * `parlance engine`: which llama.cpp binary a server loads, and the build for this machine, as a user runs
 * them. The build itself (tens of minutes of C++) is not run here; its refusals and its help are.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bindingPackageDir, localBuilds } from '../../src/engines/llama-cpp/local-build.js';
import { runCli } from '../fixtures/cli.js';
import { tempDirs } from '../fixtures/temp-dirs.js';

const tempDir = tempDirs('parlance-cli-engine-');

async function localBuildFolders(): Promise<string[]> {
  return readdir(join(bindingPackageDir(), 'llama', 'localBuilds')).catch(() => []);
}

describe('parlance engine', () => {
  it('status names the binary a server would load: the prebuilt one on a clean install', async () => {
    const result = await runCli(['engine', 'status', '--gpu', 'off'], { timeoutMs: 60_000 });
    expect(result.code).toBe(0);
    const [first] = result.stdout.split('\n');
    if (localBuilds().length === 0) {
      expect(first).toMatch(/^llama\.cpp binary a server loads \(--gpu off\): prebuilt \(CPU\), llama\.cpp \S+, node-llama-cpp \d+\.\d+\.\d+$/);
      expect(result.stdout).toContain("'parlance engine build' compiles llama.cpp for this machine");
    } else {
      // This checkout has a build of its own (`parlance engine build` was run here): that is what loads.
      expect(first).toMatch(/: local build \(CPU\), /);
      expect(result.stdout).toMatch(/^local builds:$/m);
    }
    expect(result.stdout).toMatch(/^dispatch loop: (as shipped|patched)$/m);
  });

  it('build --help says what it does and takes --gpu, without building anything', async () => {
    const before = await localBuildFolders();
    const result = await runCli(['engine', 'build', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: parlance engine build \[options\]/);
    expect(result.stdout).toContain('offline');
    expect(result.stdout).toMatch(/--gpu <kind>/);
    expect(result.stdout).toMatch(/--no-dispatch-patch/);
    expect(await localBuildFolders()).toEqual(before);
  });

  it('refuses an unknown option or GPU kind in one line, and builds nothing', async () => {
    const before = await localBuildFolders();
    const flag = await runCli(['engine', 'build', '--jobs', '2']);
    expect(flag.code).not.toBe(0);
    expect(flag.stdout).toBe('');
    expect(flag.stderr).toBe("parlance: unknown option '--jobs'; see 'parlance engine build --help'\n");

    const gpu = await runCli(['engine', 'build', '--gpu', 'quantum']);
    expect(gpu.code).not.toBe(0);
    expect(gpu.stdout).toBe('');
    expect(gpu.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^parlance: invalid configuration: gpu \(--gpu, PARLANCE_GPU\): .*"auto"\|"cuda"/)]);
    expect(await localBuildFolders()).toEqual(before);
  });

  it('refuses to build without the tools it needs, naming them, rather than downloading CMake', async () => {
    const before = await localBuildFolders();
    // An empty PATH: no cmake, git, compiler or make (the CLI itself runs by node's absolute path).
    const result = await runCli(['engine', 'build', '--gpu', 'off'], { env: { PATH: await tempDir() } });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^parlance: cannot build llama\.cpp: the build needs cmake .*git .*C\+\+ compiler.*make; install them/)]);
    expect(await localBuildFolders()).toEqual(before);
  });
});
