/** The store's tables as of the latest migration, and the row types built from them. */
import type { ColumnType, Insertable, Selectable } from 'kysely';

/** Epoch milliseconds: `bigint` columns come back as strings from `pg`, as numbers from SQLite. */
export type Millis = ColumnType<number | string, number, number>;

export interface ConversationsTable {
  id: string;
  title: string;
  model: string | null;
  system_prompt: string | null;
  /** JSON of {@link ConversationSettings}. */
  settings: string;
  active_leaf_id: string | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface MessagesTable {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  role: string;
  content: string;
  status: string;
  model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  first_token_ms: number | null;
  total_ms: number | null;
  error_code: string | null;
  error_message: string | null;
  /** Since 0004. */
  reasoning: string;
  /** JSON of the {@link MessageToolCall} list; `null` when there are none. Since 0004. */
  tool_calls: string | null;
  /** Since 0004. */
  finish_reason: string | null;
  /** JSON of the {@link MessageAttachment} list; `null` when there are none. Since 0008. */
  attachments: string | null;
  instance_id: string | null;
  /** While streaming: when the generating replica's lease runs out (migration 0002). */
  lease_expires_at: Millis | null;
  /** While streaming: when another replica asked for the reply to stop (migration 0002). */
  stop_requested_at: Millis | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface StoreDatabase {
  conversations: ConversationsTable;
  messages: MessagesTable;
}

export type ConversationRow = Selectable<ConversationsTable>;
export type MessageRow = Selectable<MessagesTable>;
/** A whole message row to insert: every column given, `null` included. */
export type MessageInsert = Required<Insertable<MessagesTable>>;
