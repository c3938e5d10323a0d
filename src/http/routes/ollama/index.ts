import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Generation, GenerationRequest } from '../../../engines/contract.js';
import { ParlanceError } from '../../../errors.js';
import { clientDisconnectSignal } from '../../client-signal.js';
import { collectBlocks, toolArguments } from '../../collect-blocks.js';
import { openSse, type HttpDeps } from '../../deps.js';
import { installErrorHandlers } from '../../errors.js';
import { refuseUnsupported, type ServedModel } from '../../served-model.js';
import { ollamaErrorBody, ollamaModel } from './errors.js';
import { isRunning, OLLAMA_API_VERSION, runningOf, showOf, tagOf } from './models.js';
import { chatShape, doneObject, generateShape, objectHead, RequestClock, relayOllamaStream, type OllamaShape } from './ndjson.js';
import { chatRequestSchema, embedRequestSchema, generateRequestSchema, showRequestSchema, type OllamaOptions, type OllamaToolCallOut } from './schema.js';
import { chatToRequest, generateToRequest, ollamaParams } from './to-request.js';

export interface OllamaRouteOptions {
  readonly deps: HttpDeps;
  /** The app's method table, so that a wrong method under `/api` is still a 405 (in Ollama's error shape). */
  readonly allowedMethods: (url: string) => readonly string[];
}

/**
 * `options.num_ctx` bounds the prompt plus the reply. Up to the model's own context it is honoured by counting
 * the prompt and capping the reply to what is left; past it, or on an engine that cannot count, it is refused.
 */
async function boundByNumCtx(request: GenerationRequest, options: OllamaOptions | undefined, model: ServedModel, signal: AbortSignal): Promise<GenerationRequest> {
  const numCtx = options?.num_ctx;
  const contextLength = model.info?.contextLength;
  if (numCtx === undefined || (contextLength !== undefined && numCtx === contextLength)) return request;
  if (contextLength !== undefined && numCtx > contextLength) {
    throw new ParlanceError('unsupported_parameter', `options.num_ctx is ${numCtx}, but the model '${request.model}' is served with a context of ${contextLength} tokens; ask for at most that.`, { param: 'options.num_ctx' });
  }
  if (model.engine.countTokens === undefined) {
    throw new ParlanceError('unsupported_parameter', `options.num_ctx cannot be honoured for the model '${request.model}': its engine cannot count the prompt's tokens; leave it out.`, { param: 'options.num_ctx' });
  }
  const promptTokens = await model.engine.countTokens(request, signal);
  const room = numCtx - promptTokens;
  if (room < 1) {
    throw new ParlanceError('context_length_exceeded', `The prompt takes ${promptTokens} tokens, which leaves no room in options.num_ctx (${numCtx}).`, { param: 'options.num_ctx' });
  }
  const maxTokens = Math.min(request.sampling.maxTokens ?? room, room);
  return { ...request, sampling: { ...request.sampling, maxTokens } };
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** The generation, telling the clock when its first output comes (for a non-streamed answer's durations). */
function timed(generation: Generation, clock: RequestClock): Generation {
  return {
    promptTokens: generation.promptTokens,
    async *[Symbol.asyncIterator]() {
      for await (const event of generation) {
        if (event.type !== 'usage' && event.type !== 'finish') clock.output();
        yield event;
      }
    },
  };
}

/** The answer to a request with nothing to generate: Ollama loads the model and says so. */
function loaded(model: string, shape: OllamaShape): string {
  return `${objectHead(model)()}${shape.content('', '', undefined)},"done":true,"done_reason":"load"}`;
}

/** Ollama's API: chat and generate (NDJSON streams unless `stream: false`), models, and embeddings, in Ollama's shapes. */
export const ollamaRoutes: FastifyPluginAsync<OllamaRouteOptions> = async (plain, { deps, allowedMethods }) => {
  // Everything under /api that no other route serves, and everything these routes answer, is in Ollama's error shape.
  installErrorHandlers(plain, { onError: (code) => deps.metrics.error(code), allowedMethods, body: ollamaErrorBody });
  const app = plain.withTypeProvider<ZodTypeProvider>();

  /** Admits a generation and answers it as a stream or one object. */
  async function answer(reply: FastifyReply, request: GenerationRequest, model: ServedModel, stream: boolean, shape: OllamaShape, clock: RequestClock, signal: AbortSignal): Promise<unknown> {
    const generation = await deps.chat.open(request, signal);
    clock.admitted();
    if (stream) {
      const ndjson = openSse(deps, reply, model.engine, { contentType: 'application/x-ndjson', keepAliveFrame: '' });
      await relayOllamaStream(ndjson, generation, request.model, shape, clock);
      return reply;
    }
    const result = await collectBlocks(timed(generation, clock));
    let text = '';
    let thinking = '';
    // A call cut off by the token limit is left out: done_reason says the reply was cut.
    const calls: OllamaToolCallOut[] = [];
    for (const block of result.blocks) {
      if (block.kind === 'tool') {
        const args = toolArguments(block.json, result.reason);
        if (args !== undefined) calls.push({ function: { name: block.name, arguments: args } });
      } else if (block.kind === 'text') text += block.text;
      else thinking += block.text;
    }
    const content = shape.content(text, thinking, result.logprobs, calls);
    return reply.type(JSON_TYPE).send(doneObject(objectHead(request.model), content, result.reason, clock.stats(result.usage, generation.promptTokens)));
  }

  app.post('/chat', { schema: { body: chatRequestSchema } }, async (request, reply) => {
    const clock = new RequestClock();
    const body = request.body;
    const model = ollamaModel(deps.engines, body.model);
    if (body.messages.length === 0) return reply.type(JSON_TYPE).send(loaded(body.model, chatShape));
    const signal = clientDisconnectSignal(reply);
    const generationRequest = chatToRequest(body, model.info);
    refuseUnsupported(generationRequest, model, ollamaParams);
    return answer(reply, await boundByNumCtx(generationRequest, body.options, model, signal), model, body.stream ?? true, chatShape, clock, signal);
  });

  app.post('/generate', { schema: { body: generateRequestSchema } }, async (request, reply) => {
    const clock = new RequestClock();
    const body = request.body;
    const model = ollamaModel(deps.engines, body.model);
    if (body.prompt === '' && (body.images === undefined || body.images.length === 0)) return reply.type(JSON_TYPE).send(loaded(body.model, generateShape));
    const signal = clientDisconnectSignal(reply);
    const generationRequest = generateToRequest(body, model.info);
    refuseUnsupported(generationRequest, model, ollamaParams);
    return answer(reply, await boundByNumCtx(generationRequest, body.options, model, signal), model, body.stream ?? true, generateShape, clock, signal);
  });

  app.get('/tags', async () => ({ models: deps.engines.models().map(({ model, engine }) => tagOf(model, engine)) }));

  app.get('/ps', async () => ({ models: deps.engines.models().filter(({ model }) => isRunning(model)).map(({ model, engine }) => runningOf(model, engine)) }));

  app.get('/version', async () => ({ version: OLLAMA_API_VERSION }));

  app.post('/show', { schema: { body: showRequestSchema } }, async (request) => {
    const id = request.body.model ?? request.body.name ?? '';
    const { engine, info } = ollamaModel(deps.engines, id);
    return showOf(info ?? { id, ownedBy: engine.name, capabilities: new Set() }, engine);
  });

  app.post('/embed', { schema: { body: embedRequestSchema } }, async (request, reply) => {
    const clock = new RequestClock();
    const body = request.body;
    ollamaModel(deps.engines, body.model); // Ollama's own 404 for a model nobody serves
    const inputs = typeof body.input === 'string' ? [body.input] : body.input;
    // The core path every embeddings dialect takes: capability, batch and time bounds, the engine's queue.
    const result = await deps.embeddings.embed({ model: body.model, inputs }, clientDisconnectSignal(reply));
    const width = result.vectors[0]?.length ?? 0;
    if (body.dimensions !== undefined && body.dimensions !== width) {
      throw new ParlanceError('unsupported_parameter', `The model '${body.model}' makes vectors of ${width} dimensions and cannot shorten them; leave dimensions out or set it to ${width}.`, { param: 'dimensions' });
    }
    const stats = clock.stats({ promptTokens: result.promptTokens, completionTokens: 0 }, result.promptTokens);
    return { model: body.model, embeddings: result.vectors.map((vector) => Array.from(vector)), total_duration: stats.total_duration, load_duration: stats.load_duration, prompt_eval_count: result.promptTokens };
  });
};
