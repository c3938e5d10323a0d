/**
 * The error registry: every error Parlance answers with has a stable code here,
 * with its HTTP status and OpenAI error `type`. `docs/errors.md` lists the same
 * table; `test/unit/errors.test.ts` keeps the two in step.
 */
export const errorRegistry = {
  invalid_request: { status: 400, type: 'invalid_request_error', summary: 'The body or a parameter is invalid; `param` names the field.' },
  unsupported_parameter: { status: 400, type: 'invalid_request_error', summary: 'A known parameter that the requested model cannot honour; `param` names it. Nothing is silently ignored.' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error', summary: "The prompt (plus `max_tokens`) does not fit the model's context." },
  invalid_api_key: { status: 401, type: 'authentication_error', summary: 'No API key, or an unknown one, on a route that needs one.' },
  host_not_allowed: { status: 403, type: 'permission_error', summary: 'The `Host` header names no address this server answers to (DNS rebinding); allow the name with `--allowed-hosts`.' },
  origin_not_allowed: { status: 403, type: 'permission_error', summary: 'A state-changing request from a web page of another origin; allow the origin with `--cors-origin`.' },
  not_found: { status: 404, type: 'invalid_request_error', summary: 'No such route or resource.' },
  model_not_found: { status: 404, type: 'invalid_request_error', summary: 'No engine serves the requested `model`.' },
  method_not_allowed: { status: 405, type: 'invalid_request_error', summary: 'The route exists but not for this method.' },
  stream_too_large: { status: 413, type: 'invalid_request_error', summary: 'A resumable stream outgrew `--resumable-stream-max-bytes`; it ends with this error event (sent in-stream).' },
  payload_too_large: { status: 413, type: 'invalid_request_error', summary: 'The body exceeds the configured limit.' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', summary: 'The body is not in a content type the route accepts.' },
  validation_failed: { status: 422, type: 'invalid_request_error', summary: 'The seed endpoints answer FastAPI-style 422s with a `detail` list.' },
  queue_full: { status: 429, type: 'rate_limit_error', summary: "The engine's queue is full; retry after `Retry-After` seconds." },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error', summary: "The API key used its requests or tokens per minute; retry after `Retry-After` seconds." },
  internal_error: { status: 500, type: 'server_error', summary: 'An unexpected error; logged with the request id.' },
  upstream_error: { status: 502, type: 'server_error', summary: 'An upstream engine failed or answered something unusable.' },
  engine_unavailable: { status: 503, type: 'server_error', summary: 'The engine is loading, shutting down, or cannot be reached.' },
  upstream_timeout: { status: 504, type: 'server_error', summary: 'An upstream engine stalled or exceeded the deadline.' },
  model_load_failed: { status: 500, type: 'server_error', summary: "A model of the models directory could not be loaded (not a GGUF, too large, ...); the message names the file and why. Other models keep serving." },
  generation_failed: { status: 500, type: 'server_error', summary: 'The engine failed while generating (sent in-stream after the first byte).' },
  server_stopped: { status: 503, type: 'server_error', summary: 'A conversation reply was cut because the server stopped mid-reply (shut down or crashed); the text it had is kept.' },
} as const satisfies Record<string, { status: number; type: string; summary: string }>;

export type ErrorCode = keyof typeof errorRegistry;

export interface ParlanceErrorOptions {
  /** The request field the error is about, as OpenAI's `param`. */
  readonly param?: string;
  /** Seconds a client should wait before retrying (sent as `Retry-After`). */
  readonly retryAfterSeconds?: number;
  /** Overrides the registry's status, for upstream 4xx passed through as-is. */
  readonly status?: number;
  readonly cause?: unknown;
}

/** A domain error with a stable code. Throw it anywhere; `http/errors.ts` turns it into a response. */
export class ParlanceError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: ParlanceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ParlanceError';
    this.code = code;
    this.status = options.status ?? errorRegistry[code].status;
    this.type = errorRegistry[code].type;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isParlanceError(error: unknown): error is ParlanceError {
  return error instanceof ParlanceError;
}
