import type { ParlanceError } from '../../../errors.js';
import type { AnthropicErrorBody } from './schema.js';

/** Anthropic's error types by HTTP status, as its SDK maps them to its typed errors. */
function anthropicErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503 || status === 529) return 'overloaded_error';
  if (status === 504) return 'timeout_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

/** `{"type":"error","error":{"type","message"}}`, the body of every error this dialect answers, in-stream ones too. */
export function anthropicErrorBody(error: ParlanceError): AnthropicErrorBody {
  return { type: 'error', error: { type: anthropicErrorType(error.status), message: error.message } };
}
