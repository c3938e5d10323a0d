import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { ParlanceError } from '../../../errors.js';
import { embeddingRequestSchema, type EmbeddingRequestBody } from '../../../protocol/openai-embeddings.js';
import { clientDisconnectSignal } from '../../client-signal.js';
import type { HttpDeps } from '../../deps.js';

/** The texts of a request; token arrays are refused by name (the engines embed text). */
function textsOf(input: EmbeddingRequestBody['input']): string[] {
  if (typeof input === 'string') return [input];
  const texts: string[] = [];
  for (const item of input) {
    if (typeof item !== 'string') throw new ParlanceError('invalid_request', 'input as token ids is not supported here; send the text.', { param: 'input' });
    texts.push(item);
  }
  return texts;
}

/** Little-endian float32 bytes in base64, as OpenAI's `encoding_format: "base64"` sends them. */
function base64Of(vector: Float32Array | readonly number[]): string {
  const floats = vector instanceof Float32Array ? vector : Float32Array.from(vector);
  const bytes = Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength);
  if (bytes.readFloatLE(0) === floats[0] || floats.length === 0) return bytes.toString('base64');
  // A big-endian host: swap each float's bytes into the little-endian order clients decode.
  return Buffer.from(bytes).swap32().toString('base64');
}

export const embeddingsRoute: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  app.withTypeProvider<ZodTypeProvider>().post('/v1/embeddings', { schema: { body: embeddingRequestSchema } }, async (request, reply) => {
    const body = request.body;
    const inputs = textsOf(body.input);
    const result = await deps.embeddings.embed({ model: body.model, inputs }, clientDisconnectSignal(reply));
    const width = result.vectors[0]?.length ?? 0;
    if (body.dimensions !== undefined && body.dimensions !== width) {
      throw new ParlanceError('unsupported_parameter', `The model '${body.model}' makes vectors of ${width} dimensions and cannot shorten them; leave dimensions out or set it to ${width}.`, { param: 'dimensions' });
    }
    const base64 = body.encoding_format === 'base64';
    return {
      object: 'list',
      data: result.vectors.map((vector, index) => ({ object: 'embedding', index, embedding: base64 ? base64Of(vector) : Array.from(vector) })),
      model: body.model,
      usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
    };
  });
};
