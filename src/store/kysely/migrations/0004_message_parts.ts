/**
 * 0004: what a message carries besides its text: the model's reasoning, its
 * tool calls (with their results) as JSON, and why its generation ended.
 * Existing messages get none of them (an empty reasoning, no tool calls, no
 * finish reason), which is what they had.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('messages').addColumn('reasoning', 'text', (col) => col.notNull().defaultTo('')).execute();
  await db.schema.alterTable('messages').addColumn('tool_calls', 'text').execute();
  await db.schema.alterTable('messages').addColumn('finish_reason', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('messages').dropColumn('finish_reason').execute();
  await db.schema.alterTable('messages').dropColumn('tool_calls').execute();
  await db.schema.alterTable('messages').dropColumn('reasoning').execute();
}
