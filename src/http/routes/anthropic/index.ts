import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { FinishReason, Generation, TokenUsage } from '../../../engines/contract.js';
import { ParlanceError } from '../../../errors.js';
import { clientDisconnectSignal } from '../../client-signal.js';
import { collectBlocks, toolArguments, type CollectedBlock } from '../../collect-blocks.js';
import { openSse, type HttpDeps } from '../../deps.js';
import { refuseUnsupported, servedModel } from '../../served-model.js';
import { cancelledByServer, installErrorHandlers } from '../../errors.js';
import type { SseStream } from '../../sse.js';
import { anthropicErrorBody } from './errors.js';
import { errorFrame, MessageStreamEncoder, pingFrame, toAnthropicUsage, toStopReason } from './message-stream.js';
import { countTokensRequestSchema, messagesRequestSchema, type AnthropicMessage, type ContentBlockOut } from './schema.js';
import { anthropicParams, toGenerationRequest, toSampling } from './to-request.js';

function messageId(): string {
  return `msg_${crypto.randomUUID().replaceAll('-', '')}`;
}

function toContentBlocks(blocks: readonly CollectedBlock[], reason: FinishReason): ContentBlockOut[] {
  const out: ContentBlockOut[] = [];
  for (const block of blocks) {
    if (block.kind === 'text') out.push({ type: 'text', text: block.text });
    else if (block.kind === 'thinking') out.push({ type: 'thinking', thinking: block.text, signature: '' });
    else {
      const input = toolArguments(block.json, reason);
      if (input !== undefined) out.push({ type: 'tool_use', id: block.id, name: block.name, input });
    }
  }
  return out;
}

/** Relays a generation as Anthropic's event stream, waiting on the socket when it is full. */
async function relayMessageStream(sse: SseStream, generation: Generation, encoder: MessageStreamEncoder): Promise<void> {
  sse.write(encoder.start(generation.promptTokens));
  let usage: TokenUsage | undefined;
  for await (const event of generation) {
    if (sse.closed) continue; // keep draining so the engine's finish/usage arrive and resources are released
    if (event.type === 'usage') usage = event.usage;
    else if (event.type === 'error') sse.end(errorFrame(new ParlanceError(event.code, event.message)));
    else if (event.type === 'finish') {
      // Cut by the server while the client is still here (shutdown, deadline): say so rather than end silently.
      if (event.reason === 'cancelled') sse.end(errorFrame(cancelledByServer));
      else if (event.reason !== 'error') sse.end(encoder.end(event.reason, event.stopSequence, usage));
    } else {
      const frames = encoder.event(event);
      if (frames !== '' && !sse.write(frames)) await sse.drained();
    }
  }
  sse.end();
}

/** Anthropic's Messages API: `/v1/messages` (streamed or not) and `/v1/messages/count_tokens`, in Anthropic's shapes, errors included. */
export const anthropicRoutes: FastifyPluginAsync<HttpDeps> = async (plain, deps) => {
  // Everything these routes answer, a refused key or an invalid body included, is in Anthropic's error shape.
  installErrorHandlers(plain, { onError: (code) => deps.metrics.error(code), body: anthropicErrorBody });
  const app = plain.withTypeProvider<ZodTypeProvider>();
  // The id Anthropic's SDK reports with its errors. A callback hook: an async one costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('request-id', request.id);
    done();
  });

  app.post('/v1/messages', { schema: { body: messagesRequestSchema } }, async (request, reply) => {
    const body = request.body;
    // Looked up before admission: once a generation is open, nothing may throw before it is relayed.
    const model = servedModel(deps.engines, body.model);
    const generationRequest = toGenerationRequest(body, model.info, toSampling(body));
    refuseUnsupported(generationRequest, model, anthropicParams(body));
    const id = messageId();
    const generation = await deps.chat.open(generationRequest, clientDisconnectSignal(reply));
    if (body.stream === true) {
      const sse = openSse(deps, reply, model.engine, { keepAliveFrame: pingFrame });
      await relayMessageStream(sse, generation, new MessageStreamEncoder(id, body.model));
      return reply;
    }
    const result = await collectBlocks(generation);
    const stopReason = toStopReason(result.reason, result.stopSequence, result.blocks.some((block) => block.kind === 'tool'));
    const message: AnthropicMessage = {
      id,
      type: 'message',
      role: 'assistant',
      model: body.model,
      content: toContentBlocks(result.blocks, result.reason),
      stop_reason: stopReason,
      stop_sequence: stopReason === 'stop_sequence' ? (result.stopSequence ?? null) : null,
      usage: toAnthropicUsage(result.usage),
    };
    return message;
  });

  app.post('/v1/messages/count_tokens', { schema: { body: countTokensRequestSchema } }, async (request, reply) => {
    const body = request.body;
    const model = servedModel(deps.engines, body.model);
    const { engine } = model;
    const generationRequest = toGenerationRequest(body, model.info);
    refuseUnsupported(generationRequest, model, anthropicParams(body));
    if (engine.countTokens === undefined) {
      throw new ParlanceError('invalid_request', `The model '${body.model}' cannot count tokens here: its engine ('${engine.name}') has no tokenizer Parlance can reach.`, { param: 'model' });
    }
    return { input_tokens: await engine.countTokens(generationRequest, clientDisconnectSignal(reply)) };
  });
};
