/**
 * 0005: a full-text index over message text, kept in step with it by the
 * database itself, so that every write path (a chat turn, the streaming text
 * saves, a finish, an import, a delete's cascade) keeps it right without the
 * store having to remember.
 *
 * - SQLite: an FTS5 table holding a copy of each message's text and its id,
 *   filled and updated by triggers. Its rowid is the message row's, so that a
 *   streaming save updates one index row by key. (External content would
 *   save the copy, but then snippets would read text that was never stripped
 *   of the marker characters below.) The store never runs VACUUM, which may
 *   renumber the rowids of a table without an INTEGER PRIMARY KEY; after one,
 *   refill the table from `messages` as `up` does.
 * - PostgreSQL: a generated `tsvector` column with a GIN index.
 *
 * Both split words the same plain way (no stemming, no stop words: a chat is in
 * any language): FTS5's `unicode61` without diacritic folding, PostgreSQL's
 * `simple` configuration. Only the first 100,000 characters of a message are
 * indexed, which keeps PostgreSQL's tsvector under its 1 MB limit (a longer
 * one would make the write fail) and bounds the work per streaming save.
 * Snippet markers are control characters 2 and 3, stripped from the indexed
 * copy so that a message cannot forge a highlight.
 */
import { SqliteAdapter, sql, type Kysely } from 'kysely';

const isSqlite = (db: Kysely<unknown>): boolean => db.getExecutor().adapter instanceof SqliteAdapter;

export async function up(db: Kysely<unknown>): Promise<void> {
  if (isSqlite(db)) {
    const text = (row: 'new') => sql.raw(`replace(replace(substr(${row}.content, 1, 100000), char(2), ''), char(3), '')`);
    await sql`create virtual table messages_fts using fts5(body, message_id unindexed, tokenize = 'unicode61 remove_diacritics 0')`.execute(db);
    await sql`insert into messages_fts (rowid, body, message_id) select rowid, ${text('new')}, id from messages as new`.execute(db);
    await sql`create trigger messages_fts_insert after insert on messages begin
      insert into messages_fts (rowid, body, message_id) values (new.rowid, ${text('new')}, new.id);
    end`.execute(db);
    await sql`create trigger messages_fts_update after update of content on messages when old.content is not new.content begin
      update messages_fts set body = ${text('new')} where rowid = new.rowid;
    end`.execute(db);
    await sql`create trigger messages_fts_delete after delete on messages begin
      delete from messages_fts where rowid = old.rowid;
    end`.execute(db);
    return;
  }
  await sql`alter table messages add column search tsvector generated always as
    (to_tsvector('simple', translate(left(content, 100000), chr(2) || chr(3), ''))) stored`.execute(db);
  await sql`create index messages_search_idx on messages using gin (search)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (isSqlite(db)) {
    for (const name of ['messages_fts_insert', 'messages_fts_update', 'messages_fts_delete']) await sql`drop trigger ${sql.id(name)}`.execute(db);
    await sql`drop table messages_fts`.execute(db);
    return;
  }
  await sql`drop index messages_search_idx`.execute(db);
  await sql`alter table messages drop column search`.execute(db);
}
