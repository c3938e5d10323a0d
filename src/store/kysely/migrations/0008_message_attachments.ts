/**
 * 0008: the files a user sent with a message (text files, documents' text, images as data: URLs), as JSON.
 * Existing messages had none: `null`.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('messages').addColumn('attachments', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('messages').dropColumn('attachments').execute();
}
