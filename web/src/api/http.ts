/** An error answered by Parlance (OpenAI's error shape) or a network failure, with what a person should read. */
export class ApiError extends Error {
  constructor(
    message: string,
    /** HTTP status; 0 for a network failure. */
    readonly status: number,
    /** Parlance's stable error code, when the server sent one. */
    readonly code: string | null,
    /** The request field the error is about (`settings.topK`), when the server named one. */
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get isNetwork(): boolean {
    return this.status === 0;
  }
}

interface ErrorBody {
  readonly error?: { readonly message?: unknown; readonly code?: unknown; readonly param?: unknown };
}

/**
 * An error message as a person using the page should read it: addresses of
 * upstream servers (URLs, host:port) are for the operator's logs, not for the
 * chat; they become "the upstream server".
 */
export function publicMessage(text: string): string {
  return text
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>)]+/gi, 'the upstream server')
    .replace(/\[?[0-9a-f:]*:[0-9a-f:]+\]?:\d{1,5}\b/gi, 'the upstream server')
    .replace(/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b/g, 'the upstream server')
    .replace(/\b[a-z0-9-]+(?:\.[a-z0-9-]+)*:\d{2,5}\b/gi, 'the upstream server');
}

/** Turns a non-2xx response into an ApiError with the server's own message. */
export async function errorFrom(response: Response): Promise<ApiError> {
  let body: ErrorBody | undefined;
  try {
    body = (await response.json()) as ErrorBody;
  } catch {
    body = undefined;
  }
  const message = typeof body?.error?.message === 'string' ? publicMessage(body.error.message) : `The server answered ${response.status} ${response.statusText}.`;
  const code = typeof body?.error?.code === 'string' ? body.error.code : null;
  const param = typeof body?.error?.param === 'string' ? body.error.param : null;
  return new ApiError(message, response.status, code, param);
}

const KEY_STORAGE = 'parlance-api-key';
let apiKey: string | null = readStoredKey();
let onUnauthorized: (() => void) | undefined;
let onUnreachable: (() => void) | undefined;

function readStoredKey(): string | null {
  try {
    return window.localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

/**
 * The API key this browser sends (`Authorization: Bearer`), for servers run
 * with `--api-key`. It is kept in this browser's localStorage only.
 */
export function setApiKey(key: string | null): void {
  apiKey = key && key.trim() ? key.trim() : null;
  if (apiKey) window.localStorage.setItem(KEY_STORAGE, apiKey);
  else window.localStorage.removeItem(KEY_STORAGE);
}

/**
 * Asks the server whether it takes `key` (a cheap authenticated read), without
 * keeping it: true when accepted, false on 401; throws ApiError otherwise.
 */
export async function checkApiKey(key: string): Promise<boolean> {
  let response: Response;
  try {
    response = await fetch('/parlance/api/conversations?limit=1', { credentials: 'same-origin', headers: { accept: 'application/json', authorization: `Bearer ${key.trim()}` } });
  } catch {
    throw new ApiError('Parlance cannot be reached. Check that the server is running and your connection is up.', 0, null);
  }
  if (response.status === 401) return false;
  if (!response.ok) throw await errorFrom(response);
  return true;
}

export function hasApiKey(): boolean {
  return apiKey !== null;
}

/** Called when the server answers 401: the page then asks for a key. */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

/** Called when a request cannot reach the server at all (it is down, or the network is). */
export function whenUnreachable(handler: () => void): void {
  onUnreachable = handler;
}

export function authHeaders(): Record<string, string> {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

/** `fetch` with the API key (if any), that turns network failures into ApiError(status 0) and keeps aborts as they are. */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  try {
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(authHeaders())) headers.set(name, value);
    const response = await fetch(path, { credentials: 'same-origin', ...init, headers });
    if (response.status === 401) onUnauthorized?.();
    return response;
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    onUnreachable?.();
    throw new ApiError('Parlance cannot be reached. Check that the server is running and your connection is up.', 0, null);
  }
}

/** A JSON request: sends `body` as JSON, answers the parsed JSON body, throws ApiError on any failure. */
export async function json<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const response = await request(path, {
    method: init.method ?? 'GET',
    headers: init.body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}
