import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { completionRequestSchema } from '../../../protocol/openai.js';
import { clientDisconnectSignal } from '../../client-signal.js';
import { openSse, type HttpDeps } from '../../deps.js';
import { toCompletionGenerationRequest } from './chat-request.js';
import { legacyLogprobs } from './logprobs.js';
import { collectGeneration, relayOpenAIStream, responseId, toOpenAIFinish, toOpenAIUsage, type ChunkFormat } from './relay.js';

function completionChunkFormat(id: string, created: number, model: string): ChunkFormat {
  const head = `{"id":"${id}","object":"text_completion","created":${created},"model":${JSON.stringify(model)},"choices":`;
  // text_offset counts from the start of the whole completion, across chunks.
  let offset = 0;
  return {
    text: (text, logprobs) => {
      const chunk = `${head}[{"index":0,"text":${JSON.stringify(text)},"logprobs":${logprobs === undefined ? 'null' : JSON.stringify(legacyLogprobs(logprobs, offset))},"finish_reason":null}]}`;
      offset += text.length;
      return chunk;
    },
    finish: (reason) => `${head}[{"index":0,"text":"","logprobs":null,"finish_reason":"${reason}"}]}`,
    usage: (usage) => `${head}[],"usage":${JSON.stringify(usage)}}`,
  };
}

/** The legacy `/v1/completions`: raw text in, raw continuation out, no chat template. */
export const completionsRoute: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  app.withTypeProvider<ZodTypeProvider>().post('/v1/completions', { schema: { body: completionRequestSchema } }, async (request, reply) => {
    const body = request.body;
    const generationRequest = toCompletionGenerationRequest(body);
    const id = responseId('cmpl');
    const created = Math.floor(Date.now() / 1000);
    // Looked up before admission: once a generation is open, nothing may throw before it is relayed.
    const engine = deps.engines.engineFor(body.model);
    const generation = await deps.chat.open(generationRequest, clientDisconnectSignal(reply));
    if (body.stream) {
      const sse = openSse(deps, reply, engine);
      await relayOpenAIStream(sse, generation, completionChunkFormat(id, created, body.model), body.stream_options?.include_usage === true);
      return reply;
    }
    const result = await collectGeneration(generation);
    return {
      id,
      object: 'text_completion',
      created,
      model: body.model,
      choices: [{ index: 0, text: result.text, logprobs: result.logprobs === undefined ? null : legacyLogprobs(result.logprobs), finish_reason: toOpenAIFinish(result.reason) }],
      usage: toOpenAIUsage(result.usage),
    };
  });
};
