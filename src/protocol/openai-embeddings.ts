import { z } from 'zod';

/**
 * OpenAI's `/v1/embeddings` request, and the Jina/Cohere rerank request that llama.cpp's server also
 * speaks. Unknown fields are ignored, as the SDKs add some over time.
 */

const text = z.string().min(1, { error: 'an input text must not be empty' });
const tokens = z.array(z.number().int().min(0)).min(1);

export const embeddingRequestSchema = z.object({
  model: z.string().min(1).max(256),
  /** Texts; token arrays parse so that the answer can name them (they are refused: engines embed text). */
  input: z.union([text, z.array(text).min(1).max(2048), tokens, z.array(tokens).min(1).max(2048)]),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().min(1).optional(),
  user: z.string().max(256).optional(),
});
export type EmbeddingRequestBody = z.infer<typeof embeddingRequestSchema>;

const rerankDocument = z.union([z.string(), z.object({ text: z.string() })]);

export const rerankRequestSchema = z.object({
  /** Absent: the first model served here that can rerank (llama.cpp's server needs none). */
  model: z.string().min(1).max(256).optional(),
  query: z.string().min(1),
  documents: z.array(rerankDocument).max(1024),
  top_n: z.number().int().min(1).optional(),
  return_documents: z.boolean().optional(),
});
export type RerankRequestBody = z.infer<typeof rerankRequestSchema>;
