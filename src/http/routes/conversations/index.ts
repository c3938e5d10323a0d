import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ParlanceError } from '../../../errors.js';
import type { StartedReply } from '../../../core/conversation-service.js';
import type { Engine } from '../../../engines/contract.js';
import {
  continueBodySchema,
  conversationExportSchema,
  conversationPatchBodySchema,
  listConversationsQuerySchema,
  newConversationBodySchema,
  regenerateBodySchema,
  searchQuerySchema,
  selectBranchBodySchema,
  sendMessageBodySchema,
  parseReplyCursor,
  type NewConversationBody,
  type ReplyCursor,
  type ReplyStart,
} from '../../../protocol/conversations.js';
import { startCursor } from '../../../core/reply-run.js';
import type { NewConversation } from '../../../store/contract.js';
import { openSse, type HttpDeps } from '../../deps.js';
import { definedOnly } from '../../defined-only.js';
import { toMarkdown } from './markdown-export.js';
import { followStoredReply, relayRun, startFrame } from './reply-stream.js';

const idParams = z.object({ id: z.string().min(1).max(64) });
const messageParams = z.object({ id: z.string().min(1).max(64), messageId: z.string().min(1).max(64) });
const messageOnlyParams = z.object({ messageId: z.string().min(1).max(64) });


/** The protocol's conversation fields as the store takes them (no `undefined` values, nested settings included). */
function conversationFields(body: NewConversationBody): NewConversation & { presetId?: string } {
  const { settings, ...rest } = body;
  return { ...definedOnly(rest), ...(settings === undefined ? {} : { settings: definedOnly(settings) }) };
}

/**
 * Where a reconnecting client stopped: `Last-Event-ID` (what EventSource sends) or `?after=`, a cursor in the
 * canonical form this server's ids have (`text` or `text.reasoning.tools`, decimal integers without sign, point or
 * leading zero); anything else (`0x10`, `1e3`, `5.0`, an empty value) is refused rather than read as some number.
 */
function resumeCursor(request: FastifyRequest): { cursor: ReplyCursor; param: string } {
  const header = request.headers['last-event-id'];
  const given = Array.isArray(header) ? header[0] : header;
  const after = (request.query as { after?: unknown } | undefined)?.after;
  const [raw, param] = given !== undefined ? [given, 'Last-Event-ID'] : after !== undefined ? [after, 'after'] : ['0', 'Last-Event-ID'];
  const cursor = typeof raw === 'string' ? parseReplyCursor(raw) : undefined;
  if (cursor === undefined) throw new ParlanceError('invalid_request', `${param} must be the id of an event of this stream: decimal integers without sign, point or leading zero.`, { param });
  return { cursor, param };
}

/**
 * An export's file name, from the conversation's title: an ASCII fallback (letters, digits and dashes) for
 * old clients, and the title itself as UTF-8 (`filename*`, RFC 6266) for the rest.
 */
export function exportDisposition(title: string, id: string, extension: 'md' | 'json'): string {
  const cleaned = title.normalize('NFKC').replace(/[\p{Cc}\\/:*?"<>|]+/gu, ' ').replace(/\s+/g, ' ').trim().slice(0, 80);
  const ascii = cleaned.normalize('NFKD').replace(/[^\w\s-]/g, '').trim().replace(/[\s_]+/g, '-').toLowerCase().slice(0, 60);
  const fallback = `${ascii || 'conversation'}-${id.slice(-8)}.${extension}`;
  const full = cleaned ? `${cleaned}.${extension}` : fallback;
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeURIComponent(full)}`;
}

/** The chat page's API: conversations, their message trees, replies that outlive the connection. */
export const conversationRoutes: FastifyPluginAsync<HttpDeps> = async (plain, deps) => {
  const app = plain.withTypeProvider<ZodTypeProvider>();
  const { store, conversations } = deps;
  const conversationOf = (id: string) => () => store.getConversation(id);

  /** The engine generating a reply's model, whose stream hints its SSE follows; none when no engine serves it any more. */
  function sourceOf(model: string | null): Engine | undefined {
    if (model === null) return undefined;
    try {
      return deps.engines.engineFor(model);
    } catch {
      return undefined;
    }
  }

  async function streamReply(reply: FastifyReply, started: StartedReply): Promise<FastifyReply> {
    const start: ReplyStart = { assistantMessage: started.run.message, ...(started.userMessage ? { userMessage: started.userMessage } : {}) };
    const sse = openSse(deps, reply, sourceOf(started.run.message.model));
    sse.write(startFrame(start));
    await relayRun(sse, started.run, startCursor, conversationOf(started.run.message.conversationId));
    return reply;
  }

  app.get('/api/conversations', { schema: { querystring: listConversationsQuerySchema } }, async (request) =>
    store.listConversations(definedOnly({ limit: request.query.limit, cursor: request.query.cursor })),
  );

  app.get('/api/search', { schema: { querystring: searchQuerySchema } }, async (request) =>
    store.searchMessages(definedOnly({ query: request.query.q, limit: request.query.limit, cursor: request.query.cursor })),
  );

  app.post('/api/conversations', { schema: { body: newConversationBodySchema } }, async (request, reply) =>
    reply.status(201).send(await conversations.createConversation(conversationFields(request.body))),
  );

  app.get('/api/conversations/:id', { schema: { params: idParams } }, async (request) => {
    const tree = await store.getTree(request.params.id);
    if (!tree) throw new ParlanceError('not_found', `No conversation ${request.params.id}.`);
    return tree;
  });

  app.patch('/api/conversations/:id', { schema: { params: idParams, body: conversationPatchBodySchema } }, async (request) =>
    conversations.updateConversation(request.params.id, conversationFields(request.body)),
  );

  app.delete('/api/conversations/:id', { schema: { params: idParams } }, async (request, reply) => {
    await store.deleteConversation(request.params.id);
    return reply.status(204).send();
  });

  app.post('/api/conversations/:id/messages', { schema: { params: idParams, body: sendMessageBodySchema } }, async (request, reply) =>
    streamReply(reply, await conversations.send(request.params.id, definedOnly(request.body))),
  );

  app.post('/api/conversations/:id/messages/:messageId/regenerate', { schema: { params: messageParams, body: regenerateBodySchema.nullish() } }, async (request, reply) =>
    streamReply(reply, await conversations.regenerate(request.params.id, request.params.messageId, definedOnly(request.body ?? {}))),
  );

  app.post('/api/conversations/:id/messages/:messageId/continue', { schema: { params: messageParams, body: continueBodySchema.nullish() } }, async (request, reply) =>
    streamReply(reply, await conversations.continueReply(request.params.id, request.params.messageId)),
  );

  app.put('/api/conversations/:id/branch', { schema: { params: idParams, body: selectBranchBodySchema } }, async (request) => {
    await conversations.requireConversation(request.params.id);
    await store.selectBranch(request.params.id, request.body.messageId);
    return store.getTree(request.params.id);
  });

  app.get('/api/messages/:messageId/events', { schema: { params: messageOnlyParams } }, async (request, reply) => {
    const { cursor, param } = resumeCursor(request);
    const message = await store.getMessage(request.params.messageId);
    if (!message) throw new ParlanceError('not_found', `No message ${request.params.messageId}.`);
    const run = conversations.liveRun(message.id);
    // A client cannot have more of the reply than there is: it would be sent nothing it lacks, or text it has.
    // (A reply generating on another replica is saved a moment behind its stream, so there the client may be ahead.)
    const elsewhere = message.status === 'streaming' ? Number.POSITIVE_INFINITY : undefined;
    const knownText = run?.text.length ?? elsewhere ?? message.content.length;
    const knownReasoning = run?.reasoning.length ?? elsewhere ?? message.reasoning.length;
    if (cursor.text > knownText || cursor.reasoning > knownReasoning) {
      throw new ParlanceError('invalid_request', `${param} is beyond this reply (${knownText} characters of text, ${knownReasoning} of reasoning).`, { param });
    }
    const sse = openSse(deps, reply, run ? sourceOf(message.model) : undefined);
    if (run) await relayRun(sse, run, cursor, conversationOf(message.conversationId));
    else await followStoredReply(sse, message, cursor, () => store.getMessage(message.id), conversationOf(message.conversationId), 250);
    return reply;
  });

  app.post('/api/messages/:messageId/stop', { schema: { params: messageOnlyParams } }, async (request) => conversations.stop(request.params.messageId));

  app.get('/api/conversations/:id/export', { schema: { params: idParams, querystring: z.object({ format: z.enum(['json', 'markdown']).default('json') }) } }, async (request, reply) => {
    const data = await store.exportConversation(request.params.id);
    if (!data) throw new ParlanceError('not_found', `No conversation ${request.params.id}.`);
    const markdown = request.query.format === 'markdown';
    reply.header('content-disposition', exportDisposition(data.conversation.title, data.conversation.id, markdown ? 'md' : 'json'));
    if (markdown) return reply.type('text/markdown; charset=utf-8').send(toMarkdown(data));
    return data;
  });

  app.post('/api/conversations/import', { schema: { body: conversationExportSchema } }, async (request, reply) => {
    const record = await store.importConversation(request.body);
    return reply.status(201).send(record);
  });
};
