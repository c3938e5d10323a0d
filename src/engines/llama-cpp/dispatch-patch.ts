import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A two-part change to node-llama-cpp 3.21's batch dispatch loop (`LlamaContext.dispatchPendingBatch`),
 * applied by `parlance engine build` to the install it builds for, and by nothing else:
 *
 * - before each later loop iteration it yields a macrotask, so that every sequence whose sample is in has
 *   queued its next token (as shipped, the last one to sample misses each batch: 3 tokens per step for 4
 *   streams);
 * - it adds a batch's sequences in increasing id order, because llama.cpp (one KV stream per sequence)
 *   decodes a batch whose ids are out of order in two or three passes over the weights.
 *
 * Neither is reachable through node-llama-cpp's options: `dispatchSchedule` only decides when the first
 * dispatch after an idle context starts, and a batch item handed to `itemPrioritizationStrategy` carries no
 * sequence id. Measured (docs/decisions/embedded-engine.md), it pays only with a well-compiled binary, which
 * is why it comes with the local build. It is a text replacement of known lines: on any other version of the
 * file it does nothing and says so.
 */

const marker = '/* parlance: dispatch loop patch */';

const original = `                while (shouldHaveAnotherLoop) {
                    const orderedQueuedDecodes = getOrderedQueuedDecodes(prioritizationStrategy);
                    if (orderedQueuedDecodes == null)
                        return; // all queued items are rejected and dequeued when we get here
                    const { currentBatchItems, currentBatchSize } = fitQueuedDecodesToABatch(orderedQueuedDecodes, this._batchSize);
`;

const patched = `                let firstLoop = true; ${marker}
                while (shouldHaveAnotherLoop) {
                    if (!firstLoop)
                        await new Promise((resolve) => setImmediate(resolve));
                    firstLoop = false;
                    const orderedQueuedDecodes = getOrderedQueuedDecodes(prioritizationStrategy);
                    if (orderedQueuedDecodes == null)
                        return; // all queued items are rejected and dequeued when we get here
                    const { currentBatchItems, currentBatchSize } = fitQueuedDecodesToABatch(orderedQueuedDecodes, this._batchSize);
                    currentBatchItems.sort((a, b) => a.queuedDecode.sequenceId - b.queuedDecode.sequenceId);
`;

export type DispatchLoopState = 'patched' | 'as shipped' | 'unknown';

function contextFile(packageDir: string): string {
  return join(packageDir, 'dist', 'evaluator', 'LlamaContext', 'LlamaContext.js');
}

export function dispatchLoopState(packageDir: string): DispatchLoopState {
  const file = contextFile(packageDir);
  if (!existsSync(file)) return 'unknown';
  const text = readFileSync(file, 'utf8');
  if (text.includes(marker)) return 'patched';
  return text.includes(original) ? 'as shipped' : 'unknown';
}

/** Applies the patch; returns why it did not, when it did not (already applied is no reason). */
export async function applyDispatchPatch(packageDir: string): Promise<string | undefined> {
  const file = contextFile(packageDir);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return `${file} is not there: the dispatch loop is left as shipped`;
  if (text.includes(marker)) return undefined;
  if (!text.includes(original)) return "this node-llama-cpp's dispatch loop is not the one the patch was written for (3.21): left as shipped";
  await writeFile(file, text.replace(original, patched));
  return undefined;
}

export async function revertDispatchPatch(packageDir: string): Promise<void> {
  const file = contextFile(packageDir);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined || !text.includes(marker)) return;
  await writeFile(file, text.replace(patched, original));
}
