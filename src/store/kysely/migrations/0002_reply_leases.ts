/**
 * 0002: a lease on each reply being generated, and a stop asked for by another replica.
 *
 * `lease_expires_at` (epoch ms) is renewed by the replica generating the reply (its heartbeat); once it has
 * passed, any replica may mark the reply failed, keeping its partial text: a replica killed mid-reply no longer
 * leaves it `streaming` for good. `stop_requested_at` is set by a replica asked to stop a reply it does not
 * generate; the one generating it sees it at its next heartbeat, stops, and stores the text it streamed.
 * Both are null on rows that are not streaming, and on rows stored before this migration.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('messages').addColumn('lease_expires_at', 'bigint').execute();
  await db.schema.alterTable('messages').addColumn('stop_requested_at', 'bigint').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('messages').dropColumn('stop_requested_at').execute();
  await db.schema.alterTable('messages').dropColumn('lease_expires_at').execute();
}
