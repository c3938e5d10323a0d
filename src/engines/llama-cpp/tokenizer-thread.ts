import { Worker } from 'node:worker_threads';
import type { LlamaTextJSON } from 'node-llama-cpp';

/**
 * Tokenizes on a worker thread, with the model's vocabulary only (`vocabOnly`: no weights, no context),
 * so that tokenizing a long prompt (~0.5 s per MB, synchronous native code) does not hold the event loop that
 * serves every other request. One thread, requests answered in order. The worker's code is plain JavaScript
 * evaluated from this string: it runs the same under tsx and from the compiled build.
 */
const workerCode = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { getLlama, LlamaText } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  const model = await llama.loadModel({ modelPath: workerData.modelPath, vocabOnly: true });
  parentPort.on('message', ({ id, text, json }) => {
    try {
      const tokens = Uint32Array.from(json === undefined ? model.tokenize(text) : LlamaText.fromJSON(json).tokenize(model.tokenizer));
      parentPort.postMessage({ id, tokens }, [tokens.buffer]);
    } catch (error) {
      parentPort.postMessage({ id, error: String(error && error.message || error) });
    }
  });
  parentPort.postMessage({ ready: true });
})().catch((error) => parentPort.postMessage({ failed: String(error && error.message || error) }));
`;

type Reply = { readonly id: number; readonly tokens: Uint32Array } | { readonly id: number; readonly error: string } | { readonly ready: true } | { readonly failed: string };

export type TokenizerInput = { readonly text: string } | { readonly json: LlamaTextJSON };

export class TokenizerThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (tokens: Uint32Array) => void; reject: (error: Error) => void }>();
  #nextId = 0;
  #ready = false;
  #broken = false;

  /** `onFailure`: told once if the thread cannot serve (prompts are then tokenized on the event loop). */
  constructor(
    modelPath: string,
    private readonly onFailure: (error: Error) => void = () => undefined,
  ) {
    this.#worker = new Worker(workerCode, { eval: true, workerData: { modelPath } });
    this.#worker.unref();
    this.#worker.on('message', (reply: Reply) => {
      if ('ready' in reply) this.#ready = true;
      else if ('failed' in reply) this.#fail(new Error(`the tokenizer thread could not load the vocabulary: ${reply.failed}`));
      else {
        const waiting = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        if ('tokens' in reply) waiting?.resolve(reply.tokens);
        else waiting?.reject(new Error(reply.error));
      }
    });
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', () => this.#fail(new Error('the tokenizer thread exited')));
  }

  /** True once the vocabulary is loaded and the thread has not failed: until then, callers tokenize themselves. */
  get usable(): boolean {
    return this.#ready && !this.#broken;
  }

  /** The token ids of a text, or of a templated prompt (a LlamaText's JSON, special tokens included). */
  tokenize(input: TokenizerInput): Promise<Uint32Array> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, ...input });
    });
  }

  async close(): Promise<void> {
    this.#broken = true;
    await this.#worker.terminate();
  }

  #fail(error: Error): void {
    if (!this.#broken) this.onFailure(error);
    this.#broken = true;
    for (const waiting of this.#pending.values()) waiting.reject(error);
    this.#pending.clear();
  }
}
