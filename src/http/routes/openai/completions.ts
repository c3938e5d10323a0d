import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { GenerationRequest } from '../../../engines/contract.js';
import { completionRequestSchema } from '../../../protocol/openai.js';
import { clientDisconnectSignal } from '../../client-signal.js';
import { openSse, type HttpDeps } from '../../deps.js';
import { toSampling } from './chat-completions.js';
import { collectGeneration, relayOpenAIStream, responseId, toOpenAIFinish, toOpenAIUsage, type ChunkFormat } from './relay.js';

function completionChunkFormat(id: string, created: number, model: string): ChunkFormat {
  const head = `{"id":"${id}","object":"text_completion","created":${created},"model":${JSON.stringify(model)},"choices":`;
  return {
    text: (text) => `${head}[{"index":0,"text":${JSON.stringify(text)},"logprobs":null,"finish_reason":null}]}`,
    finish: (reason) => `${head}[{"index":0,"text":"","logprobs":null,"finish_reason":"${reason}"}]}`,
    usage: (usage) => `${head}[],"usage":${JSON.stringify(usage)}}`,
  };
}

/** The legacy `/v1/completions`: raw text in, raw continuation out, no chat template. */
export const completionsRoute: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  app.withTypeProvider<ZodTypeProvider>().post('/v1/completions', { schema: { body: completionRequestSchema } }, async (request, reply) => {
    const body = request.body;
    const prompt = typeof body.prompt === 'string' ? body.prompt : (body.prompt[0] ?? '');
    const generationRequest: GenerationRequest = { model: body.model, input: { kind: 'text', prompt }, sampling: toSampling(body, body.max_tokens ?? 16) };
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
      choices: [{ index: 0, text: result.text, logprobs: null, finish_reason: toOpenAIFinish(result.reason) }],
      usage: toOpenAIUsage(result.usage),
    };
  });
};
