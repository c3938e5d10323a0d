/**
 * 0001: conversations and their message trees.
 *
 * Migrations are append-only: once released, a migration file is never edited;
 * a change to the schema is a new file. Types are the portable subset that
 * Kysely's schema builder renders the same on SQLite and PostgreSQL: `text`,
 * `integer`, `bigint` (times in epoch milliseconds), JSON as `text`.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('conversations')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('title', 'text', (col) => col.notNull())
    .addColumn('model', 'text')
    .addColumn('system_prompt', 'text')
    .addColumn('settings', 'text', (col) => col.notNull().defaultTo('{}'))
    // No foreign key: it would be circular with messages.conversation_id; the store keeps it valid.
    .addColumn('active_leaf_id', 'text')
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .execute();

  await db.schema.createIndex('conversations_updated_idx').on('conversations').columns(['updated_at', 'id']).execute();

  await db.schema
    .createTable('messages')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('conversation_id', 'text', (col) => col.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('parent_id', 'text', (col) => col.references('messages.id').onDelete('cascade'))
    .addColumn('role', 'text', (col) => col.notNull())
    .addColumn('content', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('model', 'text')
    .addColumn('prompt_tokens', 'integer')
    .addColumn('completion_tokens', 'integer')
    .addColumn('first_token_ms', 'integer')
    .addColumn('total_ms', 'integer')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    // The store instance that streams the message (crash recovery by replica).
    .addColumn('instance_id', 'text')
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .addCheckConstraint('messages_role_check', sql`role in ('system', 'user', 'assistant')`)
    .addCheckConstraint('messages_status_check', sql`status in ('streaming', 'complete', 'stopped', 'failed')`)
    .execute();

  await db.schema.createIndex('messages_conversation_idx').on('messages').columns(['conversation_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('messages_parent_idx').on('messages').column('parent_id').execute();
  await db.schema.createIndex('messages_status_idx').on('messages').column('status').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('messages').execute();
  await db.schema.dropTable('conversations').execute();
}
