/**
 * 0003: the OpenAI Responses API's stored responses (`previous_response_id`, `GET /v1/responses/{id}`).
 * JSON as `text`, times in epoch milliseconds, as in 0001.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('responses')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('model', 'text', (col) => col.notNull())
    .addColumn('previous_response_id', 'text')
    .addColumn('input', 'text', (col) => col.notNull())
    .addColumn('body', 'text', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .execute();
  await db.schema.createIndex('responses_created_idx').on('responses').column('created_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('responses').execute();
}
