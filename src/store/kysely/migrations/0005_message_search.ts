/**
 * 0005: a full-text index over message text, kept in step with it by the
 * database itself (triggers), so that every write path (a chat turn, a
 * finish, an import, a delete's cascade) keeps it right without the store
 * having to remember.
 *
 * A reply still streaming is re-indexed only each time its text has grown by
 * {@link streamingStep} characters since it was last indexed, and in full when
 * it ends (finished, stopped, failed or recovered): re-indexing at every
 * periodic save (each one tokenizes the old text and the new) made the store's
 * CPU per chat turn 2.3 times what it was without an index for 256-token
 * replies and 22 times for 2,048-token ones (bench/persistence.ts
 * --store-only, 50 streams); with the step, 1.3–1.9 and 4.3 times. Search can
 * lag a live reply by at most that much text.
 *
 * - SQLite: an FTS5 table holding a copy of each message's text, its id and
 *   the length it was indexed at. Its rowid is the message row's, so that an
 *   update touches one index row by key. (External content would save the
 *   copy, but then snippets would read text never stripped of the marker
 *   characters below.) The store never runs VACUUM, which may renumber the
 *   rowids of a table without an INTEGER PRIMARY KEY; after one, refill the
 *   table from `messages` as `up` does.
 * - PostgreSQL: a `tsvector` column with a GIN index, set by a trigger.
 *
 * Both split words the same plain way (no stemming, no stop words: a chat is in
 * any language): FTS5's `unicode61` without diacritic folding, PostgreSQL's
 * `simple` configuration. Only the first 100,000 characters of a message are
 * indexed, which keeps PostgreSQL's tsvector under its 1 MB limit (a longer
 * one would make the write fail) and bounds the work per update. Snippet
 * markers are control characters 2 and 3, stripped from the indexed text so
 * that a message cannot forge a highlight.
 */
import { SqliteAdapter, sql, type Kysely } from 'kysely';

/** Characters a streaming reply grows by between two re-indexings. */
export const streamingStep = 2000;

const isSqlite = (db: Kysely<unknown>): boolean => db.getExecutor().adapter instanceof SqliteAdapter;

export async function up(db: Kysely<unknown>): Promise<void> {
  const step = sql.raw(String(streamingStep));
  if (isSqlite(db)) {
    const text = sql.raw(`replace(replace(substr(new.content, 1, 100000), char(2), ''), char(3), '')`);
    await sql`create virtual table messages_fts using fts5(body, message_id unindexed, indexed_length unindexed, tokenize = 'unicode61 remove_diacritics 0')`.execute(db);
    await sql`insert into messages_fts (rowid, body, message_id, indexed_length) select rowid, ${text}, id, length(content) from messages as new`.execute(db);
    await sql`create trigger messages_fts_insert after insert on messages begin
      insert into messages_fts (rowid, body, message_id, indexed_length) values (new.rowid, ${text}, new.id, length(new.content));
    end`.execute(db);
    await sql`create trigger messages_fts_update after update of content, status on messages
      when (new.status <> 'streaming' and (old.content is not new.content or old.status = 'streaming'))
        or (new.status = 'streaming' and length(new.content) >= (select indexed_length from messages_fts where rowid = new.rowid) + ${step})
    begin
      update messages_fts set body = ${text}, indexed_length = length(new.content) where rowid = new.rowid;
    end`.execute(db);
    await sql`create trigger messages_fts_delete after delete on messages begin
      delete from messages_fts where rowid = old.rowid;
    end`.execute(db);
    return;
  }
  const vector = (row: string) => sql.raw(`to_tsvector('simple', translate(left(${row}.content, 100000), chr(2) || chr(3), ''))`);
  await sql`alter table messages add column search tsvector, add column search_length integer not null default 0`.execute(db);
  await sql`update messages as m set search = ${vector('m')}, search_length = length(m.content)`.execute(db);
  await sql`create function messages_search_index() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then
        new.search := ${vector('new')};
        new.search_length := length(new.content);
      elsif (new.status <> 'streaming' and (new.content is distinct from old.content or old.status = 'streaming'))
        or (new.status = 'streaming' and length(new.content) >= old.search_length + ${step}) then
        new.search := ${vector('new')};
        new.search_length := length(new.content);
      end if;
      return new;
    end $$`.execute(db);
  await sql`create trigger messages_search_index before insert or update of content, status on messages
    for each row execute function messages_search_index()`.execute(db);
  await sql`create index messages_search_idx on messages using gin (search)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (isSqlite(db)) {
    for (const name of ['messages_fts_insert', 'messages_fts_update', 'messages_fts_delete']) await sql`drop trigger ${sql.id(name)}`.execute(db);
    await sql`drop table messages_fts`.execute(db);
    return;
  }
  await sql`drop trigger messages_search_index on messages`.execute(db);
  await sql`drop function messages_search_index()`.execute(db);
  await sql`drop index messages_search_idx`.execute(db);
  await sql`alter table messages drop column search, drop column search_length`.execute(db);
}
