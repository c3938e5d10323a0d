/**
 * Where the embedded engine's GGUF file comes from: `--model` (or
 * `PARLANCE_MODEL`) is a local path, an `hf:` reference or an http(s) URL.
 * Remote models download once into `modelsDir`; later runs use the cached file
 * without touching the network. `parlance pull` calls {@link resolveModel}
 * ahead of time for the same effect.
 *
 * Every way of not getting a model ends in a {@link ModelUnavailableError}
 * whose message is fit to print as-is: what was asked for, what went wrong,
 * and how to use a local file instead.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ParlanceError } from '../../errors.js';
import { createProgressDisplay, DownloadError, downloadFile, GGUF_MAGIC, notGgufReason, readHead, type DownloadProgress, type ProgressOutput } from './download.js';

/**
 * The model Parlance serves when none is configured. Qwen2.5-0.5B-Instruct at
 * Q4_K_M: Apache-2.0, so anyone may self-host it; about 490 MB, so the first
 * start is a short wait; its GGUF carries its ChatML chat template, so
 * node-llama-cpp formats chats correctly without configuration; and it answers
 * sensibly for its size while running at usable speed on two CPU cores.
 */
export const DEFAULT_MODEL_REF = 'hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

const LOCAL_FILE_HINT = 'To use a local file, pass --model /path/to/model.gguf (or PARLANCE_MODEL).';

/** The model named by `--model` cannot be had; the message says why, in one or two printable lines. */
export class ModelUnavailableError extends ParlanceError {
  /** The `--model` value as given. */
  readonly ref: string;
  /** What went wrong, without the hint: "HTTP 404 from https://...". */
  readonly reason: string;

  constructor(ref: string, reason: string, options: { cause?: unknown } = {}) {
    super('engine_unavailable', `Model ${ref} is unavailable: ${reason}.\n${LOCAL_FILE_HINT}`, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'ModelUnavailableError';
    this.ref = ref;
    this.reason = reason;
  }
}

export type ModelRef =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'hf'; readonly owner: string; readonly repo: string; readonly file: string; readonly revision: string }
  | { readonly kind: 'url'; readonly url: URL };

const HF_FORMAT = 'expected hf:<owner>/<repo>/<file>.gguf, optionally followed by #<revision>';
/** Hugging Face's rule for user, organisation and repository names. */
const HF_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Parses a `--model` value. Local paths come back absolute (relative to the
 * working directory, `~` expanded). Throws {@link ModelUnavailableError} on a
 * malformed `hf:` reference or URL.
 */
export function parseModelRef(ref: string): ModelRef {
  const text = ref.trim();
  if (text === '') throw new ModelUnavailableError(JSON.stringify(ref), 'the model reference is empty');
  if (/^hf:/i.test(text)) return parseHfRef(ref, text.slice(3));
  if (/^https?:\/\//i.test(text)) {
    try {
      return { kind: 'url', url: new URL(text) };
    } catch {
      throw new ModelUnavailableError(ref, 'malformed URL');
    }
  }
  if (/^file:/i.test(text)) {
    try {
      return { kind: 'file', path: fileURLToPath(text) };
    } catch {
      throw new ModelUnavailableError(ref, 'malformed file: URL');
    }
  }
  return { kind: 'file', path: expandPath(text) };
}

function parseHfRef(ref: string, body: string): ModelRef {
  const hash = body.indexOf('#');
  const spec = hash < 0 ? body : body.slice(0, hash);
  const revision = hash < 0 ? 'main' : body.slice(hash + 1);
  const [owner, repo, ...fileParts] = spec.split('/');
  const malformed = (): ModelUnavailableError => new ModelUnavailableError(ref, `malformed hf: reference (${HF_FORMAT})`);
  if (owner === undefined || repo === undefined || fileParts.length === 0) throw malformed();
  if (!HF_NAME.test(owner) || !HF_NAME.test(repo) || revision === '' || /[\s\0]/.test(revision)) throw malformed();
  // The path becomes part of a cache path: no segment may climb out of it.
  const segmentOk = (segment: string): boolean => segment !== '' && segment !== '.' && segment !== '..' && !/[\\\0-\x1f]/.test(segment);
  if (!fileParts.every(segmentOk)) throw malformed();
  const file = fileParts.join('/');
  if (!/\.gguf$/i.test(file)) throw malformed();
  return { kind: 'hf', owner, repo, file, revision };
}

/** Resolves against the working directory and expands a leading `~`. */
function expandPath(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/') || (process.platform === 'win32' && path.startsWith('~\\'))) return join(homedir(), path.slice(2));
  return resolve(path);
}

/** The URL an `hf:` reference downloads from. */
export function hfDownloadUrl(ref: Extract<ModelRef, { kind: 'hf' }>, endpoint: string = DEFAULT_HF_ENDPOINT): URL {
  const base = endpoint.replace(/\/+$/, '');
  const path = ref.file.split('/').map(encodeURIComponent).join('/');
  return new URL(`${base}/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}/resolve/${encodeURIComponent(ref.revision)}/${path}`);
}

/**
 * Where a remote model is cached: `hf/<owner>/<repo>/<file>` (`<repo>@<revision>`
 * for a revision other than `main`), or `url/<host>/<sha256(url):12>/<name>`:
 * the hash keeps two URLs with the same file name apart, and being a directory
 * rather than a prefix it leaves the file name, hence the model id, clean.
 */
export function cachePathFor(ref: Extract<ModelRef, { kind: 'hf' | 'url' }>, modelsDir: string): string {
  const root = expandPath(modelsDir);
  if (ref.kind === 'hf') {
    const repoDir = ref.revision === 'main' ? ref.repo : `${ref.repo}@${encodeURIComponent(ref.revision)}`;
    return join(root, 'hf', ref.owner, repoDir, ...ref.file.split('/'));
  }
  const host = ref.url.host.replace(/[^A-Za-z0-9.-]/g, '_');
  const hash = createHash('sha256').update(ref.url.href).digest('hex').slice(0, 12);
  return join(root, 'url', host, hash, urlFileName(ref.url));
}

function urlFileName(url: URL): string {
  const last = url.pathname.split('/').pop() ?? '';
  let name: string;
  try {
    name = decodeURIComponent(last);
  } catch {
    name = last;
  }
  name = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '').slice(0, 150);
  if (name === '') name = 'model';
  return /\.gguf$/i.test(name) ? name : `${name}.gguf`;
}

export interface ResolveModelOptions {
  /** The download cache (`--models-dir`). */
  readonly modelsDir: string;
  /** `HF_ENDPOINT`: a Hugging Face mirror, or a test server. Default https://huggingface.co. */
  readonly hfEndpoint?: string;
  /** `HF_TOKEN`, sent as a bearer token to the `hf:` endpoint (fetch drops it on cross-origin redirects). */
  readonly hfToken?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: DownloadProgress) => void;
  /** Show download progress on `progressOutput`: a bar on a terminal, a few plain lines otherwise. */
  readonly progressBar?: boolean;
  /** Where the progress goes. Default `process.stderr`. */
  readonly progressOutput?: ProgressOutput;
  /** Download attempts in all, for connections that drop. Default 4. */
  readonly maxAttempts?: number;
  /** Delay before the first retry, doubling after. Default 250 ms. */
  readonly retryDelayMs?: number;
}

export interface ResolvedModel {
  /** An absolute path to a file that starts with the GGUF magic. */
  readonly path: string;
  /** Whether this call downloaded it (false: a local file or the cache). */
  readonly downloaded: boolean;
}

/**
 * Turns a `--model` value into a local GGUF path, downloading it first when it
 * is remote and not cached. Rejects with {@link ModelUnavailableError}, or with
 * `signal.reason` when aborted.
 */
export async function resolveModel(ref: string, options: ResolveModelOptions): Promise<ResolvedModel> {
  const parsed = parseModelRef(ref);
  if (parsed.kind === 'file') {
    await checkLocalFile(ref, parsed.path);
    return { path: parsed.path, downloaded: false };
  }

  const target = cachePathFor(parsed, options.modelsDir);
  if (await isCached(target)) return { path: target, downloaded: false };

  let url: URL;
  try {
    url = parsed.kind === 'hf' ? hfDownloadUrl(parsed, options.hfEndpoint || DEFAULT_HF_ENDPOINT) : parsed.url;
  } catch {
    throw new ModelUnavailableError(ref, `HF_ENDPOINT ${JSON.stringify(options.hfEndpoint)} is not a URL`);
  }
  const headers: Record<string, string> = {};
  if (parsed.kind === 'hf' && options.hfToken) headers['authorization'] = `Bearer ${options.hfToken}`;

  try {
    await mkdir(dirname(target), { recursive: true });
  } catch (error) {
    throw new ModelUnavailableError(ref, `cannot create the cache directory ${dirname(target)} (${errorCode(error)})`, { cause: error });
  }

  const display = options.progressBar ? createProgressDisplay(basename(target), url.href, options.progressOutput ?? process.stderr) : undefined;
  try {
    await downloadFile({
      url,
      target,
      headers,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
      ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
      onProgress: (progress) => {
        display?.update(progress);
        options.onProgress?.(progress);
      },
    });
  } catch (error) {
    display?.fail();
    if (error instanceof DownloadError) throw new ModelUnavailableError(ref, error.message, { cause: error });
    throw error;
  }
  display?.done();
  return { path: target, downloaded: true };
}

/** The id clients send as `model` for a file: its name without `.gguf`. */
export function modelIdFromPath(path: string): string {
  return basename(path).replace(/\.gguf$/i, '');
}

async function checkLocalFile(ref: string, path: string): Promise<void> {
  let head: Buffer;
  try {
    if ((await stat(path)).isDirectory()) throw new ModelUnavailableError(ref, `${path} is a directory, not a .gguf file`);
    head = await readHead(path);
  } catch (error) {
    if (error instanceof ModelUnavailableError) throw error;
    const code = errorCode(error);
    const reason = code === 'ENOENT' || code === 'ENOTDIR' ? `no such file ${path}` : `cannot read ${path} (${code})`;
    throw new ModelUnavailableError(ref, reason, { cause: error });
  }
  if (!head.equals(GGUF_MAGIC)) throw new ModelUnavailableError(ref, `${path} is ${notGgufReason(head)}`);
}

/** A complete cached file. Anything else at that path is removed so the download can replace it. */
async function isCached(target: string): Promise<boolean> {
  try {
    if ((await readHead(target)).equals(GGUF_MAGIC)) return true;
  } catch {
    return false;
  }
  await rm(target, { force: true, recursive: true });
  return false;
}

function errorCode(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}
