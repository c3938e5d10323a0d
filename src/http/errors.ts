import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ParlanceError, errorRegistry, isParlanceError, type ErrorCode } from '../errors.js';
import type { OpenAIErrorBody } from '../protocol/openai.js';
import { fieldPath } from './validation.js';

export function openAIErrorBody(error: ParlanceError): OpenAIErrorBody {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
}

export interface ValidationIssue {
  /** The field as path segments, e.g. ['messages', 0, 'content']. */
  readonly segments: readonly (string | number)[];
  /** A whole sentence naming the field (see validation.ts). */
  readonly message: string;
}

/** The field errors of a failed schema validation. */
export function validationIssues(error: Pick<FastifyError, 'validation' | 'message'>): ValidationIssue[] {
  if (!error.validation?.length) return [{ segments: [], message: error.message }];
  return error.validation.map((issue) => ({
    segments: issue.instancePath
      .split('/')
      .filter(Boolean)
      .map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment.replaceAll('~1', '/').replaceAll('~0', '~'))),
    message: issue.message ?? 'The request is not valid.',
  }));
}

/** Fastify's own errors (body parsing, limits) mapped onto our registry. */
const fastifyCodes: Partial<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_MULTIPLE_CONTENT_TYPE: 'invalid_request',
};

/** Turns anything thrown by a route into a ParlanceError, so every answer has one shape. */
export function toParlanceError(error: unknown): ParlanceError {
  if (isParlanceError(error)) return error;
  const fastifyError = error as Partial<FastifyError> | undefined;
  if (fastifyError?.validation) {
    const [first] = validationIssues(fastifyError as FastifyError);
    const param = first ? fieldPath(first.segments) : '';
    return new ParlanceError('invalid_request', first?.message ?? 'The request is not valid.', param ? { param } : {});
  }
  const mapped = fastifyError?.code ? fastifyCodes[fastifyError.code] : undefined;
  if (mapped) return new ParlanceError(mapped, fastifyError?.message ?? errorRegistry[mapped].summary);
  // A SyntaxError from the JSON body parser, or any client error that fastify or a plugin raised.
  const status = fastifyError?.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return new ParlanceError('invalid_request', fastifyError?.message ?? 'bad request', { status });
  }
  return new ParlanceError('internal_error', 'An unexpected error occurred; it has been logged.', { cause: error });
}

export function sendError(reply: FastifyReply, error: ParlanceError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(Math.ceil(error.retryAfterSeconds)));
  return reply.status(error.status).send(openAIErrorBody(error));
}

/**
 * Logs an error answer: an unexpected one (500) at error level with its stack, a known server-side state
 * (overloaded, shutting down, an upstream down) as a warning, a client's mistake at info.
 */
export function logRejection(request: FastifyRequest, parlanceError: ParlanceError, thrown: unknown): void {
  if (parlanceError.status === 500) request.log.error({ err: thrown }, 'request failed');
  else if (parlanceError.status > 500) request.log.warn({ code: parlanceError.code, message: parlanceError.message }, 'request refused');
  else request.log.info({ code: parlanceError.code, message: parlanceError.message }, 'request rejected');
}

/** True when the client closed its connection before the answer was sent. */
export function clientGone(request: FastifyRequest, reply: FastifyReply): boolean {
  return reply.raw.destroyed || request.raw.socket?.destroyed === true;
}

/** Installs the OpenAI-shaped error and not-found handlers on an app or a plugin scope. */
export function installErrorHandlers(app: FastifyInstance, onError?: (code: ErrorCode) => void, allowedMethods?: (url: string) => readonly string[]): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const parlanceError = toParlanceError(error);
    if (clientGone(request, reply)) {
      // The client left first (while its request waited in the queue, say): nobody reads the answer,
      // and it is no server error. The answer still goes through fastify, to end the request's lifecycle.
      request.log.info({ code: parlanceError.code }, 'client went away before the answer');
      return sendError(reply, parlanceError);
    }
    onError?.(parlanceError.code);
    logRejection(request, parlanceError, error);
    return sendError(reply, parlanceError);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = allowedMethods?.(request.url) ?? [];
    // A route that serves this method can still find nothing (a static file missing under a wildcard
    // such as /assets/*): that is 404, not 405.
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      reply.header('allow', allowed.join(', '));
      return sendError(reply, new ParlanceError('method_not_allowed', `${path} does not accept ${request.method}; it accepts ${allowed.join(', ')}.`));
    }
    return sendError(reply, new ParlanceError('not_found', `No route for ${request.method} ${path}.`));
  });
}
