import formBody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { z } from 'zod';
import { ParlanceError } from '../../errors.js';
import type { Generation } from '../../engines/contract.js';
import { ScriptedEngine } from '../../engines/scripted/engine.js';
import { clientDisconnectSignal } from '../client-signal.js';
import { openSse, type HttpDeps } from '../deps.js';
import { clientGone, logRejection, sendError, toParlanceError } from '../errors.js';
import { SseStream, formatEvent } from '../sse.js';

/** The seed's `/stream-example` tokens and its delays: 0.1 s × (1 + i mod 3). */
const exampleTokens = ['Hello', ' ', 'world', '!', ' This', ' is', ' streamed', '.'];
const exampleEngine = new ScriptedEngine({
  name: 'stream-example',
  script: () => exampleTokens.map((text, i) => ({ text, delayMs: 100 * (1 + (i % 3)) })),
});

const promptDataSchema = z.object({ prompt: z.string() });
const completionSchema = z.object({ prompt: z.string().min(1).max(1_000_000), model: z.string().min(1).optional() });

interface FastApiDetail {
  type: string;
  loc: (string | number)[];
  msg: string;
  input: unknown;
}

/** Pydantic v2's wording for the failures a `{prompt: str}` body can have, so seed clients see what FastAPI sent. */
function fastApiDetail(issue: z.core.$ZodIssue, body: unknown): FastApiDetail {
  const loc = ['body', ...issue.path.map((part) => (typeof part === 'number' ? part : String(part)))];
  const input = issue.path.reduce<unknown>((value, key) => (value && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined), body);
  if (issue.code === 'invalid_type' && input === undefined) return { type: 'missing', loc, msg: 'Field required', input: body ?? null };
  if (issue.code === 'invalid_type' && issue.expected === 'string') return { type: 'string_type', loc, msg: 'Input should be a valid string', input };
  if (issue.code === 'invalid_type' && issue.expected === 'object') return { type: 'model_attributes_type', loc, msg: 'Input should be a valid dictionary or object to extract fields from', input: body };
  return { type: 'value_error', loc, msg: issue.message, input };
}

function reject422(reply: FastifyReply, detail: FastApiDetail[]): FastifyReply {
  return reply.status(422).send({ detail });
}

/** Streams the text of a generation in the seed's framing: `data:` lines, then an explicit `end` event. */
async function relaySeedStream(sse: SseStream, generation: Generation): Promise<void> {
  for await (const event of generation) {
    if (sse.closed) continue;
    if (event.type === 'text-delta') {
      if (!sse.write(formatEvent(event.text))) await sse.drained();
    } else if (event.type === 'error') {
      sse.write(formatEvent(JSON.stringify({ code: event.code, message: event.message }), 'error'));
    } else if (event.type === 'finish') {
      sse.end(formatEvent(JSON.stringify({ finish_reason: event.reason }), 'end'));
    }
  }
  sse.end();
}

/**
 * The seed's endpoints, same paths and behaviour: `/prompt_data` echoes a
 * validated body (422 with FastAPI's `detail` otherwise), `/completion` streams
 * the model's reply to a form or JSON `prompt`, `/stream-example` streams fixed
 * tokens with delays.
 */
export const seedRoutes: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  await app.register(formBody, { bodyLimit: deps.config.bodyLimit });
  // The seed's page posts `new FormData(form)`, which is multipart.
  await app.register(multipart, { attachFieldsToBody: 'keyValues', limits: { fields: 16, fieldSize: deps.config.bodyLimit, files: 0, parts: 16 } });
  app.setErrorHandler((error, request, reply) => {
    const parlanceError = toParlanceError(error);
    // FastAPI answers an unparseable JSON body with a 422 too.
    if (parlanceError.status === 400 && request.routeOptions.url === '/prompt_data') {
      return reject422(reply, [{ type: 'json_invalid', loc: ['body'], msg: 'JSON decode error', input: {} }]);
    }
    if (clientGone(request, reply)) {
      request.log.info({ code: parlanceError.code }, 'client went away before the answer');
    } else {
      deps.metrics.error(parlanceError.code);
      logRejection(request, parlanceError, error);
    }
    return sendError(reply, parlanceError);
  });

  app.post('/prompt_data', async (request, reply) => {
    const parsed = promptDataSchema.safeParse(request.body);
    if (!parsed.success) return reject422(reply, parsed.error.issues.map((issue) => fastApiDetail(issue, request.body)));
    return parsed.data;
  });

  app.post('/completion', async (request, reply) => {
    const parsed = completionSchema.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const param = issue?.path.join('.') || 'prompt';
      throw new ParlanceError('invalid_request', `Invalid request: ${param}: ${issue?.message ?? 'invalid body'}`, { param });
    }
    const model = parsed.data.model ?? deps.engines.defaultModel();
    // Looked up before admission: once a generation is open, nothing may throw before it is relayed.
    const engine = deps.engines.engineFor(model);
    const generation = await deps.chat.open(
      { model, input: { kind: 'chat', messages: [{ role: 'user', content: parsed.data.prompt }] }, sampling: {} },
      clientDisconnectSignal(reply),
    );
    await relaySeedStream(openSse(deps, reply, engine), generation);
    return reply;
  });

  app.get('/stream-example', async (_request, reply) => {
    const generation = await exampleEngine.open({ model: 'stream-example', input: { kind: 'text', prompt: '' }, sampling: {} }, clientDisconnectSignal(reply));
    await relaySeedStream(openSse(deps, reply), generation);
    return reply;
  });
};
