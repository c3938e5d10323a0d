/**
 * The dispatch-loop patch `parlance engine build` applies to node-llama-cpp, on a copy of the installed
 * package's file: applied, it batches in sequence-id order after a yield; reverted, the file is as shipped
 * again, byte for byte; on a file it was not written for, it changes nothing and says why.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyDispatchPatch, dispatchLoopState, revertDispatchPatch } from '../../src/engines/llama-cpp/dispatch-patch.js';
import { bindingPackageDir } from '../../src/engines/llama-cpp/local-build.js';
import { tempDirs } from '../fixtures/temp-dirs.js';

const tempDir = tempDirs('parlance-dispatch-patch-');
const relative = join('dist', 'evaluator', 'LlamaContext', 'LlamaContext.js');

async function copyOfPackage(): Promise<{ dir: string; file: string; shipped: string }> {
  const dir = await tempDir();
  const file = join(dir, relative);
  await mkdir(join(dir, 'dist', 'evaluator', 'LlamaContext'), { recursive: true });
  await copyFile(join(bindingPackageDir(), relative), file);
  // The install may carry the patch already (a local build here): the test starts from the shipped text.
  await revertDispatchPatch(dir);
  return { dir, file, shipped: await readFile(file, 'utf8') };
}

describe('the dispatch-loop patch', () => {
  it("fits the installed node-llama-cpp's dispatch loop, and reverts to the shipped file exactly", async () => {
    const { dir, file, shipped } = await copyOfPackage();
    expect(dispatchLoopState(dir)).toBe('as shipped');

    expect(await applyDispatchPatch(dir)).toBeUndefined();
    const patched = await readFile(file, 'utf8');
    expect(dispatchLoopState(dir)).toBe('patched');
    expect(patched).toContain('currentBatchItems.sort((a, b) => a.queuedDecode.sequenceId - b.queuedDecode.sequenceId)');
    expect(patched).toContain('await new Promise((resolve) => setImmediate(resolve))');
    // Applying twice changes nothing.
    expect(await applyDispatchPatch(dir)).toBeUndefined();
    expect(await readFile(file, 'utf8')).toBe(patched);

    await revertDispatchPatch(dir);
    expect(await readFile(file, 'utf8')).toBe(shipped);
    expect(dispatchLoopState(dir)).toBe('as shipped');
  });

  it('leaves a dispatch loop it was not written for alone, and says so', async () => {
    const { dir, file, shipped } = await copyOfPackage();
    const other = shipped.replace('while (shouldHaveAnotherLoop) {', 'while (shouldHaveAnotherLoop && !this._disposed) {');
    await writeFile(file, other);
    expect(await applyDispatchPatch(dir)).toMatch(/not the one the patch was written for/);
    expect(await readFile(file, 'utf8')).toBe(other);
    expect(dispatchLoopState(dir)).toBe('unknown');
  });
});
