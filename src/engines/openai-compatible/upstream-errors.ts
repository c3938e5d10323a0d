import type { ErrorCode } from '../../errors.js';

/** What an upstream's error body says, each part only when present. */
export interface UpstreamErrorInfo {
  readonly message?: string;
  readonly param?: string;
  readonly code?: string;
}

/** Upstream messages are clipped: a misbehaving upstream must not fill our errors and logs. */
export const MAX_MESSAGE_CHARS = 500;

export function streamReadFailure(error: unknown, label: string): { code: ErrorCode; message: string } {
  const code = errorCodeOf(error);
  if (code === 'UND_ERR_BODY_TIMEOUT') return { code: 'upstream_timeout', message: `${label} stopped sending data` };
  return { code: 'upstream_error', message: `${label} closed the connection mid-stream${code === undefined ? '' : ` (${code})`}` };
}

/** Reads OpenAI's `{error:{message,param,code}}`, Ollama's `{error:"…"}` and older vLLM's top-level `{message,…}`. */
export function parseErrorBody(text: string): UpstreamErrorInfo {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof body !== 'object' || body === null) return {};
  const error = (body as { error?: unknown }).error;
  if (typeof error === 'string') return { message: error };
  const source = typeof error === 'object' && error !== null ? error : body;
  const { message, param, code } = source as { message?: unknown; param?: unknown; code?: unknown };
  return {
    ...(typeof message === 'string' && message !== '' ? { message } : {}),
    ...(typeof param === 'string' && param !== '' ? { param } : {}),
    ...(typeof code === 'string' && code !== '' ? { code } : {}),
  };
}

export function describeError(error: unknown): string | undefined {
  if (typeof error === 'string') return `sent an error: ${clip(error)}`;
  if (typeof error === 'object' && error !== null) {
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string') return `sent an error: ${clip(message)}`;
  }
  return undefined;
}

export function describeStreamError(data: string): string | undefined {
  try {
    const body: unknown = JSON.parse(data);
    if (typeof body === 'object' && body !== null && 'error' in body) return describeError((body as { error: unknown }).error);
    return describeError(body);
  } catch {
    return data === '' ? undefined : `sent an error: ${clip(data)}`;
  }
}

export function clip(text: string): string {
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text;
}


/** Retry-After is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/** undici puts the system error (ECONNREFUSED, ENOTFOUND, UND_ERR_SOCKET, …) on `cause.code`. */
export function errorCodeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

