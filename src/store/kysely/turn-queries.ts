/** The compiled statements of a chat turn, and the helpers that run them. */
import { sql, type CompiledQuery, type Kysely } from 'kysely';
import { precompile } from './precompiled.js';
import type { MessageInsert, StoreDatabase } from './schema.js';
import type { QueryRunner } from './sqlite-dialect.js';

/**
 * The statements a chat turn runs (read the conversation, add the user's
 * message, select its branch, start the reply, save its text, finish it),
 * compiled once per store: see `precompiled.ts`. The rest of the store builds
 * its queries per call; they run rarely, or their shape varies.
 */
export function turnQueries(db: Kysely<StoreDatabase>, dialect: 'sqlite' | 'postgres') {
  return {
    conversation: precompile((p: { id: string }) => db.selectFrom('conversations').selectAll().where('id', '=', p.id)),
    /** The conversation, inside a write transaction: on PostgreSQL its row is locked until the transaction ends. */
    conversationLocked: precompile((p: { id: string }) =>
      db
        .selectFrom('conversations')
        .selectAll()
        .where('id', '=', p.id)
        .$if(dialect === 'postgres', (qb) => qb.forUpdate()),
    ),
    /** The conversation's id if it exists; on PostgreSQL it also locks the row until the transaction ends. */
    lockConversation: precompile((p: { id: string }) =>
      db
        .selectFrom('conversations')
        .select('id')
        .where('id', '=', p.id)
        .$if(dialect === 'postgres', (qb) => qb.forUpdate()),
    ),
    message: precompile((p: { id: string }) => db.selectFrom('messages').selectAll().where('id', '=', p.id)),
    messageConversation: precompile((p: { id: string }) => db.selectFrom('messages').select('conversation_id').where('id', '=', p.id)),
    messageStatus: precompile((p: { id: string }) => db.selectFrom('messages').select('status').where('id', '=', p.id)),
    messagesOf: precompile((p: { conversationId: string }) =>
      db.selectFrom('messages').selectAll().where('conversation_id', '=', p.conversationId).orderBy('created_at').orderBy('id'),
    ),
    insertMessage: precompile((p: MessageInsert) =>
      db.insertInto('messages').values({
        id: p.id,
        conversation_id: p.conversation_id,
        parent_id: p.parent_id,
        role: p.role,
        content: p.content,
        status: p.status,
        model: p.model,
        prompt_tokens: p.prompt_tokens,
        completion_tokens: p.completion_tokens,
        first_token_ms: p.first_token_ms,
        total_ms: p.total_ms,
        error_code: p.error_code,
        error_message: p.error_message,
        reasoning: p.reasoning,
        tool_calls: p.tool_calls,
        finish_reason: p.finish_reason,
        attachments: p.attachments,
        instance_id: p.instance_id,
        lease_expires_at: p.lease_expires_at,
        stop_requested_at: p.stop_requested_at,
        created_at: p.created_at,
        updated_at: p.updated_at,
      }),
    ),
    /** A message was added: it is the active leaf, and the conversation changed. */
    messageAdded: precompile((p: { id: string; leaf: string; time: number }) =>
      db.updateTable('conversations').set({ active_leaf_id: p.leaf, updated_at: p.time }).where('id', '=', p.id),
    ),
    /** The first exchange also names the conversation. */
    messageAddedTitled: precompile((p: { id: string; leaf: string; time: number; title: string }) =>
      db.updateTable('conversations').set({ active_leaf_id: p.leaf, updated_at: p.time, title: p.title }).where('id', '=', p.id),
    ),
    /**
     * The branch ending at a message, leaf first (`depth` 0): one walk up the parents through the
     * primary key, instead of reading every message of the conversation to walk them in memory.
     */
    branch: precompile((p: { id: string; conversationId: string }) =>
      db
        .withRecursive('branch(id, parent_id, depth)', (qb) =>
          qb
            .selectFrom('messages')
            .select(['id', 'parent_id', sql<number>`0`.as('depth')])
            .where('id', '=', p.id)
            .where('conversation_id', '=', p.conversationId)
            .unionAll((up) =>
              up
                .selectFrom('messages')
                .innerJoin('branch', 'branch.parent_id', 'messages.id')
                .select(['messages.id', 'messages.parent_id', sql<number>`branch.depth + 1`.as('depth')]),
            ),
        )
        .selectFrom('branch')
        .innerJoin('messages', 'messages.id', 'branch.id')
        .selectAll('messages')
        .orderBy('branch.depth', 'desc'),
    ),
    /** Writes only when the leaf changes: selecting the branch that is already active (every turn does) writes nothing. */
    selectLeaf: precompile((p: { id: string; leaf: string }) =>
      db
        .updateTable('conversations')
        .set({ active_leaf_id: p.leaf })
        .where('id', '=', p.id)
        .where((eb) => eb.or([eb('active_leaf_id', 'is', null), eb('active_leaf_id', '<>', p.leaf)])),
    ),
    touchConversation: precompile((p: { id: string; time: number }) => db.updateTable('conversations').set({ updated_at: p.time }).where('id', '=', p.id).returningAll()),
    /** Saves a streaming reply's text; reasoning and tool calls too, unless `null` (left as they are: they only grow). */
    streamingText: precompile((p: { id: string; content: string; reasoning: string | null; toolCalls: string | null; time: number }) =>
      db
        .updateTable('messages')
        .set((eb) => ({
          content: p.content,
          reasoning: eb.fn.coalesce(eb.val(p.reasoning), eb.ref('reasoning')),
          tool_calls: eb.fn.coalesce(eb.val(p.toolCalls), eb.ref('tool_calls')),
          updated_at: p.time,
        }))
        .where('id', '=', p.id)
        .where('status', '=', 'streaming'),
    ),
    finishMessage: precompile(
      (
        p: Pick<MessageInsert, 'status' | 'prompt_tokens' | 'completion_tokens' | 'first_token_ms' | 'total_ms' | 'error_code' | 'error_message' | 'finish_reason'> & {
          id: string;
          /** `null` keeps the text of the last update; so for reasoning and tool calls. */
          content: string | null;
          reasoning: string | null;
          toolCalls: string | null;
          time: number;
        },
      ) =>
        db
          .updateTable('messages')
          .set((eb) => ({
            status: p.status,
            content: eb.fn.coalesce(eb.val(p.content), eb.ref('content')),
            reasoning: eb.fn.coalesce(eb.val(p.reasoning), eb.ref('reasoning')),
            tool_calls: eb.fn.coalesce(eb.val(p.toolCalls), eb.ref('tool_calls')),
            finish_reason: p.finish_reason,
            prompt_tokens: p.prompt_tokens,
            completion_tokens: p.completion_tokens,
            first_token_ms: p.first_token_ms,
            total_ms: p.total_ms,
            error_code: p.error_code,
            error_message: p.error_message,
            instance_id: null,
            lease_expires_at: null,
            stop_requested_at: null,
            updated_at: p.time,
          }))
          .where('id', '=', p.id)
          .where('status', '=', 'streaming')
          .returningAll(),
    ),
  };
}

/** The first row a query returns. */
export async function first<R>(db: QueryRunner, query: CompiledQuery<R>): Promise<R | undefined> {
  return (await db.executeQuery(query)).rows[0];
}

/** How many rows a write changed. */
export async function affected(db: QueryRunner, query: CompiledQuery): Promise<bigint> {
  return (await db.executeQuery(query)).numAffectedRows ?? 0n;
}
