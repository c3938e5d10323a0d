import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Generation, TokenUsage } from '../../../engines/contract.js';
import { ParlanceError } from '../../../errors.js';
import { responsesRequestSchema, type ResponsesRequest } from '../../../protocol/openai-responses.js';
import type { ResponseStore } from '../../../store/contract.js';
import { clientDisconnectSignal } from '../../client-signal.js';
import { openSse, type HttpDeps } from '../../deps.js';
import { ResponseOutput, statusOf, type ResponseOutcome, type ResponseShell } from './output.js';
import { inResponsesTerms, prepareRequest, type PreparedRequest } from './request.js';

const cancelledByServer = { code: 'engine_unavailable', message: 'The server stopped this response (it is shutting down, or the response reached its deadline).' } as const;

/** The fields of the response object that echo the request. */
function shellOf(body: ResponsesRequest, id: string, createdAt: number): ResponseShell {
  return {
    id,
    object: 'response',
    created_at: createdAt,
    model: body.model,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    store: body.store ?? true,
    temperature: body.temperature ?? null,
    text: { format: body.text?.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_p: body.top_p ?? null,
    truncation: 'disabled',
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

interface Run {
  readonly id: string;
  readonly createdAt: number;
  readonly body: ResponsesRequest;
  readonly prepared: PreparedRequest;
  readonly store: ResponseStore;
  readonly request: FastifyRequest;
}

/** Keeps a finished response for GET and `previous_response_id`, unless the client said `store: false`. */
async function keep(run: Run, response: Record<string, unknown>): Promise<void> {
  if (run.body.store === false) return;
  try {
    await run.store.saveResponse({ id: run.id, model: run.body.model, createdAt: run.createdAt, previousResponseId: run.body.previous_response_id ?? null, input: run.prepared.items, body: response });
  } catch (error) {
    run.request.log.error({ err: error, response: run.id }, 'the response could not be stored');
  }
}

/** Drives a generation into the output; the outcome once it ended. `paused` waits for the socket. */
async function drive(generation: Generation, output: ResponseOutput, paused?: () => Promise<void>): Promise<ResponseOutcome> {
  let usage: TokenUsage = { promptTokens: generation.promptTokens, completionTokens: 0 };
  let error: ResponseOutcome['error'];
  let status: ResponseOutcome['status'] = 'completed';
  for await (const event of generation) {
    if (event.type === 'usage') usage = event.usage;
    else if (event.type === 'error') error = { code: event.code, message: event.message };
    else if (event.type === 'finish') {
      status = statusOf(event.reason);
      if (event.reason === 'cancelled') error ??= cancelledByServer;
    } else if (!output.take(event) && paused) await paused();
  }
  return { status, usage, ...(error === undefined ? {} : { error }) };
}

/** `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`: OpenAI's Responses API over the core. */
export const responsesRoutes: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const store = deps.store.responses;

  typed.post('/v1/responses', { schema: { body: responsesRequestSchema } }, async (request, reply) => {
    const body = request.body;
    const key = crypto.randomUUID().replaceAll('-', '');
    const run: Run = { id: `resp_${key}`, createdAt: Math.floor(Date.now() / 1000), body, prepared: await prepareRequest(body, store), store, request };
    // Looked up before admission: once a generation is open, nothing may throw before it is relayed.
    const engine = deps.engines.engineFor(body.model);
    const generation = await deps.chat.open(run.prepared.generation, clientDisconnectSignal(reply)).catch((error: unknown) => {
      throw inResponsesTerms(error);
    });
    const shell = shellOf(body, run.id, run.createdAt);

    if (body.stream === true) {
      const sse = openSse(deps, reply, engine);
      const output = new ResponseOutput(shell, (frame) => sse.write(frame));
      output.start();
      const outcome = await drive(generation, output, () => sse.drained());
      if (sse.closed) return reply; // the client left: its generation was cancelled, and nothing is kept
      output.closeAll();
      await keep(run, output.response(outcome));
      output.finish(outcome);
      sse.end();
      return reply;
    }

    const output = new ResponseOutput(shell);
    const outcome = await drive(generation, output);
    output.closeAll();
    if (outcome.status === 'failed') {
      const failure = outcome.error ?? cancelledByServer;
      throw new ParlanceError(failure.code, failure.message);
    }
    const response = output.response(outcome);
    await keep(run, response);
    return response;
  });

  const params = { params: z.object({ id: z.string().min(1).max(256) }) };
  typed.get('/v1/responses/:id', { schema: params }, async (request) => {
    const record = await store.getResponse(request.params.id);
    if (record === undefined) throw new ParlanceError('not_found', `Response with id '${request.params.id}' not found.`, { param: 'id' });
    return record.body;
  });
  typed.delete('/v1/responses/:id', { schema: params }, async (request) => {
    if (!(await store.deleteResponse(request.params.id))) throw new ParlanceError('not_found', `Response with id '${request.params.id}' not found.`, { param: 'id' });
    return { id: request.params.id, object: 'response', deleted: true };
  });
};
