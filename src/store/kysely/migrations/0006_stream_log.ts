/**
 * 0006: the event logs of resumable `/v1/chat/completions` streams, so that a replica other than the one
 * generating a stream can resume it. One row per stream (owner, how many events, when it ended) and one per
 * event, as sent on the wire (its `id:` line included). Times in epoch milliseconds, as in 0001.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('stream_logs')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('owner', 'text')
    .addColumn('event_count', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('ended_at', 'bigint')
    .execute();
  await db.schema.createIndex('stream_logs_ended_idx').on('stream_logs').column('ended_at').execute();
  await db.schema
    .createTable('stream_log_events')
    .addColumn('stream_id', 'text', (col) => col.notNull().references('stream_logs.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (col) => col.notNull())
    .addColumn('data', 'text', (col) => col.notNull())
    .addPrimaryKeyConstraint('stream_log_events_pk', ['stream_id', 'seq'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('stream_log_events').execute();
  await db.schema.dropTable('stream_logs').execute();
}
