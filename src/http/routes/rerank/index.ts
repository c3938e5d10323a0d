import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { ParlanceError } from '../../../errors.js';
import { rerankRequestSchema } from '../../../protocol/openai-embeddings.js';
import { clientDisconnectSignal } from '../../client-signal.js';
import type { HttpDeps } from '../../deps.js';

/** The paths llama.cpp's server answers rerank on; Jina's and Cohere's clients use the first. */
const RERANK_PATHS = ['/v1/rerank', '/rerank', '/v1/reranking'] as const;

/** Rerank in the Jina/Cohere shape: `query`, `documents`, `top_n` → `results[{index, relevance_score}]`, best first. */
export const rerankRoutes: FastifyPluginAsync<HttpDeps> = async (app, deps) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  for (const path of RERANK_PATHS) {
    typed.post(path, { schema: { body: rerankRequestSchema } }, async (request, reply) => {
      const body = request.body;
      const model = body.model ?? deps.engines.models().find(({ model: info }) => info.capabilities.has('rerank'))?.model.id;
      if (model === undefined) throw new ParlanceError('invalid_request', 'No model served here can rerank; name one with model.', { param: 'model' });
      const documents = body.documents.map((document) => (typeof document === 'string' ? document : document.text));
      const result = await deps.embeddings.rerank({ model, query: body.query, documents }, clientDisconnectSignal(reply));
      const ranked = result.scores.map((score, index) => ({ index, relevance_score: score })).sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index);
      const kept = body.top_n === undefined ? ranked : ranked.slice(0, body.top_n);
      return {
        object: 'list',
        model,
        results: kept.map((item) => (body.return_documents === true ? { ...item, document: { text: documents[item.index] ?? '' } } : item)),
        usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
      };
    });
  }
};
