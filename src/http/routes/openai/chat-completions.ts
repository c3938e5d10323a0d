import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { ChatMessage, GenerationRequest, SamplingOptions } from '../../../engines/contract.js';
import { chatCompletionRequestSchema, type ChatCompletionRequest, type CompletionRequest } from '../../../protocol/openai.js';
import { clientDisconnectSignal } from '../../client-signal.js';
import { openSse, type HttpDeps } from '../../deps.js';
import { collectGeneration, relayOpenAIStream, responseId, toOpenAIFinish, toOpenAIUsage, type ChunkFormat } from './relay.js';

type MessageIn = ChatCompletionRequest['messages'][number];

function textOf(content: MessageIn['content']): string {
  if (content === null) return '';
  if (typeof content === 'string') return content;
  return content.map((part) => part.text).join('');
}

function toMessages(messages: readonly MessageIn[]): ChatMessage[] {
  // OpenAI's newer `developer` role means what `system` means to a chat template.
  return messages.map((message) => ({ role: message.role === 'developer' ? 'system' : message.role, content: textOf(message.content) }));
}

/** Sampling fields shared by chat and legacy completions, with OpenAI's nulls dropped. */
export function toSampling(body: ChatCompletionRequest | CompletionRequest, maxTokens: number | null | undefined): SamplingOptions {
  const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
  return {
    ...(maxTokens == null ? {} : { maxTokens }),
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(body.top_p == null ? {} : { topP: body.top_p }),
    ...(body.seed == null ? {} : { seed: body.seed }),
    ...(stop === undefined ? {} : { stop }),
  };
}

function chatChunkFormat(id: string, created: number, model: string): ChunkFormat {
  // Every chunk of one stream shares its head; only the choice differs, so the head is serialised once.
  const head = `{"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":null,"choices":`;
  return {
    opening: `${head}[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
    text: (text) => `${head}[{"index":0,"delta":{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}`,
    finish: (reason) => `${head}[{"index":0,"delta":{},"logprobs":null,"finish_reason":"${reason}"}]}`,
    usage: (usage) => `${head}[],"usage":${JSON.stringify(usage)}}`,
  };
}

export const chatCompletionsRoute: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  app.withTypeProvider<ZodTypeProvider>().post('/v1/chat/completions', { schema: { body: chatCompletionRequestSchema } }, async (request, reply) => {
    const body = request.body;
    const generationRequest: GenerationRequest = {
      model: body.model,
      input: { kind: 'chat', messages: toMessages(body.messages) },
      sampling: toSampling(body, body.max_completion_tokens ?? body.max_tokens),
    };
    const id = responseId('chatcmpl');
    const created = Math.floor(Date.now() / 1000);
    // Looked up before admission: once a generation is open, nothing may throw before it is relayed.
    const engine = deps.engines.engineFor(body.model);
    const generation = await deps.chat.open(generationRequest, clientDisconnectSignal(reply));
    if (body.stream) {
      const sse = openSse(deps, reply, engine);
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
      choices: [{ index: 0, message: { role: 'assistant', content: result.text, refusal: null }, logprobs: null, finish_reason: toOpenAIFinish(result.reason) }],
      usage: toOpenAIUsage(result.usage),
    };
  });
};
