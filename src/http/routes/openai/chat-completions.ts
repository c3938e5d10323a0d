import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { chatCompletionRequestSchema } from '../../../protocol/openai.js';
import { clientDisconnectSignal } from '../../client-signal.js';
import { openSse, type HttpDeps } from '../../deps.js';
import { toChatGenerationRequest } from './chat-request.js';
import { chatLogprobs } from './logprobs.js';
import { ResumableStreams, wantsResumable } from './resumable.js';
import { collectGeneration, relayOpenAIStream, responseId, toOpenAIFinish, toOpenAIUsage, type ChunkFormat, type CollectedGeneration } from './relay.js';

function chatChunkFormat(id: string, created: number, model: string): ChunkFormat {
  // Every chunk of one stream shares its head; only the choice differs, so the head is serialised once.
  const head = `{"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":null,"choices":`;
  const choice = (delta: string, logprobs = 'null', finish = 'null'): string => `${head}[{"index":0,"delta":${delta},"logprobs":${logprobs},"finish_reason":${finish}}]}`;
  return {
    opening: choice('{"role":"assistant","content":""}'),
    text: (text, logprobs) => choice(`{"content":${JSON.stringify(text)}}`, logprobs === undefined ? 'null' : JSON.stringify(chatLogprobs(logprobs))),
    reasoning: (text) => choice(`{"reasoning_content":${JSON.stringify(text)}}`),
    // OpenAI's shapes: the first delta of a call carries its id, type and whole name; later ones only argument text.
    toolCallStart: (index, callId, name) => choice(`{"tool_calls":[{"index":${index},"id":${JSON.stringify(callId)},"type":"function","function":{"name":${JSON.stringify(name)},"arguments":""}}]}`),
    toolCallDelta: (index, args) => choice(`{"tool_calls":[{"index":${index},"function":{"arguments":${JSON.stringify(args)}}}]}`),
    finish: (reason) => choice('{}', 'null', `"${reason}"`),
    usage: (usage) => `${head}[],"usage":${JSON.stringify(usage)}}`,
  };
}

/** The non-streamed answer's message: `content` is null when the reply was only tool calls, as OpenAI sends it. */
function chatMessage(result: CollectedGeneration): Record<string, unknown> {
  const onlyCalls = result.toolCalls.length > 0 && result.text === '';
  return {
    role: 'assistant',
    content: onlyCalls ? null : result.text,
    refusal: null,
    ...(result.reasoning === '' ? {} : { reasoning_content: result.reasoning }),
    ...(result.toolCalls.length === 0 ? {} : { tool_calls: result.toolCalls }),
  };
}

export const chatCompletionsRoute: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  const resumable = new ResumableStreams(deps);
  resumable.register(app);
  app.withTypeProvider<ZodTypeProvider>().post('/v1/chat/completions', { schema: { body: chatCompletionRequestSchema } }, async (request, reply) => {
    const body = request.body;
    const generationRequest = toChatGenerationRequest(body);
    const id = responseId('chatcmpl');
    const created = Math.floor(Date.now() / 1000);
    // Looked up before admission: once a generation is open, nothing may throw before it is relayed.
    const engine = deps.engines.engineFor(body.model);
    // A resumable stream outlives its client: only the deadline, shutdown or its log's bound stop it.
    const detached = wantsResumable(request, deps.config, body.stream === true) ? new AbortController() : undefined;
    const generation = await deps.chat.open(generationRequest, detached?.signal ?? clientDisconnectSignal(reply));
    if (body.stream) {
      const sse = detached ? await resumable.open(id, request, reply, () => openSse(deps, reply, engine), detached) : openSse(deps, reply, engine);
      await relayOpenAIStream(sse, generation, chatChunkFormat(id, created, body.model), body.stream_options?.include_usage === true);
      return reply;
    }
    const result = await collectGeneration(generation);
    return {
      id,
      object: 'chat.completion',
      created,
      model: body.model,
      system_fingerprint: null,
      choices: [{ index: 0, message: chatMessage(result), logprobs: result.logprobs === undefined ? null : chatLogprobs(result.logprobs), finish_reason: toOpenAIFinish(result.reason) }],
      usage: toOpenAIUsage(result.usage),
    };
  });
};
