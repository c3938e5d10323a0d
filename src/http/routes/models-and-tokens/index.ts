import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { userMessage } from '../../../core/attachments.js';
import type { ChatMessage, GenerationInput } from '../../../engines/contract.js';
import { ParlanceError } from '../../../errors.js';
import { TOKENIZE_MAX_CHARS, tokenizeBodySchema, type ModelList, type TokenCount, type TokenizeMessage } from '../../../protocol/parlance-models.js';
import { clientDisconnectSignal } from '../../client-signal.js';
import type { HttpDeps } from '../../deps.js';
import { servedModel } from '../../served-model.js';

/** A message as counted: its text files as the model reads them; images are not counted (no engine here can). */
function countedMessage(message: TokenizeMessage): ChatMessage {
  if (message.role !== 'user') return { role: message.role, content: message.content };
  return userMessage(message.content, (message.attachments ?? []).filter((file) => file.type === 'text'));
}

function withoutImages(message: ChatMessage): ChatMessage {
  return message.role === 'user' && message.parts !== undefined ? { role: 'user', content: message.content } : message;
}

/** Images a count leaves out: those of the stored history and those attached to the messages given. */
function imagesIn(history: readonly ChatMessage[], messages: readonly TokenizeMessage[]): number {
  const stored = history.reduce((sum, message) => sum + (message.role === 'user' ? (message.parts ?? []).filter((part) => part.type === 'image').length : 0), 0);
  return stored + messages.reduce((sum, message) => sum + (message.attachments ?? []).filter((file) => file.type === 'image').length, 0);
}

function inputChars(input: GenerationInput): number {
  return input.kind === 'text' ? input.prompt.length : input.messages.reduce((sum, message) => sum + message.content.length, 0);
}

/**
 * An engine that cannot count (an upstream relay: OpenAI's API has no tokenize route) gets an estimate, flagged
 * `exact: false`: about four characters a token, as English text and code average with common BPE vocabularies,
 * and a few tokens per message for the template's markers.
 */
function estimateTokens(input: GenerationInput): number {
  if (input.kind === 'text') return Math.ceil(input.prompt.length / 4);
  return input.messages.reduce((sum, message) => sum + Math.ceil(message.content.length / 4) + 4, 0);
}

/**
 * Parlance's own view of its models (capabilities, context length) and a token counter for prompts, under
 * `/parlance/api` only: the chat page's context meter and its "this model does not accept images".
 */
export const modelsAndTokensRoutes: FastifyPluginAsync<HttpDeps> = async (plain, deps) => {
  const app = plain.withTypeProvider<ZodTypeProvider>();

  app.get('/api/models', async (): Promise<ModelList> => {
    let defaultModel: string | null;
    try {
      defaultModel = deps.engines.defaultModel();
    } catch {
      defaultModel = null; // still loading, or nothing served: the list says what there is
    }
    const models = deps.engines.models().map(({ model, engine }) => ({
      id: model.id,
      ownedBy: model.ownedBy,
      contextLength: model.contextLength ?? null,
      capabilities: [...model.capabilities].sort(),
      countsTokens: engine.countTokens !== undefined,
    }));
    return { defaultModel, requestBodyBytes: deps.config.bodyLimit, models };
  });

  app.post('/api/tokenize', { schema: { body: tokenizeBodySchema } }, async (request, reply): Promise<TokenCount> => {
    const body = request.body;
    let model = body.model;
    let history: ChatMessage[] = [];
    let stored: readonly ChatMessage[] = [];
    if (body.conversationId !== undefined) {
      const active = await deps.conversations.activeHistory(body.conversationId).catch((error: unknown) => {
        throw error instanceof ParlanceError && error.code === 'not_found' ? new ParlanceError('not_found', error.message, { param: 'conversationId' }) : error;
      });
      model ??= active.model;
      stored = active.messages;
      history = active.messages.map(withoutImages);
    }
    model ??= deps.engines.defaultModel();
    const { engine, info } = servedModel(deps.engines, model);
    const input: GenerationInput = body.text !== undefined ? { kind: 'text', prompt: body.text } : { kind: 'chat', messages: [...history, ...(body.messages ?? []).map(countedMessage)] };
    // Each field is bounded by the schema; together (and with a stored history) they are bounded here, so that
    // no count costs more than a few seconds of the tokenizer thread.
    if (inputChars(input) > TOKENIZE_MAX_CHARS) {
      const param = body.text !== undefined ? 'text' : body.conversationId !== undefined ? 'conversationId' : 'messages';
      throw new ParlanceError('invalid_request', `That is more than the ${TOKENIZE_MAX_CHARS.toLocaleString('en')} characters one count takes.`, { param });
    }
    const contextLength = info?.contextLength ?? null;
    const imagesNotCounted = imagesIn(stored, body.messages ?? []);
    if (engine.countTokens === undefined) return { model, tokens: estimateTokens(input), exact: false, contextLength, imagesNotCounted };
    // The engine's own count: its tokenizer and chat template, long prompts on its tokenizer thread.
    const tokens = await engine.countTokens({ model, input, sampling: {} }, clientDisconnectSignal(reply));
    return { model, tokens, exact: true, contextLength, imagesNotCounted };
  });
};
