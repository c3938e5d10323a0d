/**
 * Full-text search over message text (the index is migration 0005's): the
 * user's words become a query in the dialect's own syntax built only from
 * letters and digits, so no input is ever read as operators. Results are
 * newest first with a keyset cursor, like the conversation list.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { searchLimitMax, searchQueryMaxLength, type MessageRole, type SearchOptions, type SearchPage, type SearchSnippet } from '../contract.js';
import { decodeCursor, encodeKey } from './cursors.js';
import type { StoreDatabase } from './schema.js';
import { checkWith, invalid, roleSchema } from './validation.js';

/** More words than this add nothing a person typed on purpose, and each costs an index lookup. */
const maxTerms = 16;
/** Words of context a snippet shows around the match. */
const snippetWords = 16;
const startMark = '\u0002';
const stopMark = '\u0003';

interface HitRow {
  id: string;
  conversation_id: string;
  role: string;
  created_at: number | string;
  title: string;
  snippet: string;
}

/** The words of a query: runs of letters and digits, as both dialects' tokenizers split text. */
export function searchTerms(query: string): string[] {
  return (query.match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, maxTerms).map((term) => term.toLowerCase());
}

/** Reads the dialect's snippet, whose matches are between the two marker characters, into text and offsets. */
export function parseSnippet(marked: string): SearchSnippet {
  let text = '';
  let start = -1;
  const highlights: [number, number][] = [];
  for (const char of marked) {
    if (char === startMark) start = text.length;
    else if (char === stopMark) {
      if (start >= 0 && text.length > start) highlights.push([start, text.length]);
      start = -1;
    } else text += char;
  }
  return { text, highlights };
}

export async function searchMessages(db: Kysely<StoreDatabase>, dialect: 'sqlite' | 'postgres', options: SearchOptions): Promise<SearchPage> {
  const { query } = options;
  if (typeof query !== 'string' || query.length < 1 || query.length > searchQueryMaxLength) {
    throw invalid('query', `query must be 1 to ${searchQueryMaxLength} characters.`);
  }
  const limit = options.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1 || limit > searchLimitMax) throw invalid('limit', `limit must be an integer from 1 to ${searchLimitMax}.`);
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
  const terms = searchTerms(query);
  if (terms.length === 0) return { hits: [], nextCursor: null };

  const keyset = after === undefined ? sql`` : sql`and (m.created_at < ${after.updatedAt} or (m.created_at = ${after.updatedAt} and m.id < ${after.id}))`;
  const statement = dialect === 'sqlite' ? sqliteSearch(terms, keyset, limit + 1) : postgresSearch(terms, keyset, limit + 1);
  const { rows } = await statement.execute(db);
  const hits = rows.slice(0, limit).map((row) => ({
    conversationId: row.conversation_id,
    conversationTitle: row.title,
    messageId: row.id,
    role: checkWith<MessageRole>(roleSchema, row.role, 'role'),
    createdAt: Number(row.created_at),
    snippet: parseSnippet(row.snippet),
  }));
  const last = hits.at(-1);
  return { hits, nextCursor: rows.length > limit && last !== undefined ? encodeKey(last.createdAt, last.messageId) : null };
}

/** FTS5: each word a quoted string (so `AND`, `NEAR` or `*` are words too), the last one a prefix; adjacent strings must all match. */
function sqliteSearch(terms: readonly string[], keyset: RawBuilder<unknown>, limit: number): RawBuilder<HitRow> {
  const match = terms.map((term, i) => `"${term}"${i === terms.length - 1 ? '*' : ''}`).join(' ');
  return sql<HitRow>`
    select m.id, m.conversation_id, m.role, m.created_at, c.title,
      snippet(messages_fts, 0, char(2), char(3), '…', ${snippetWords}) as snippet
    from messages_fts
    join messages m on m.id = messages_fts.message_id
    join conversations c on c.id = m.conversation_id
    where messages_fts match ${match} ${keyset}
    order by m.created_at desc, m.id desc
    limit ${limit}`;
}

/** tsquery: each word a quoted lexeme, all of them required (`&`), the last one a prefix (`:*`). */
function postgresSearch(terms: readonly string[], keyset: RawBuilder<unknown>, limit: number): RawBuilder<HitRow> {
  const tsquery = terms.map((term, i) => `'${term}'${i === terms.length - 1 ? ':*' : ''}`).join(' & ');
  const headline = `StartSel="${startMark}", StopSel="${stopMark}", MaxFragments=1, MaxWords=${snippetWords * 2}, MinWords=${snippetWords / 2}, FragmentDelimiter=" … "`;
  return sql<HitRow>`
    select m.id, m.conversation_id, m.role, m.created_at, c.title,
      ts_headline('simple', translate(left(m.content, 100000), chr(2) || chr(3), ''), q, ${headline}) as snippet
    from messages m
    join conversations c on c.id = m.conversation_id
    cross join to_tsquery('simple', ${tsquery}) as q
    where m.search @@ q ${keyset}
    order by m.created_at desc, m.id desc
    limit ${limit}`;
}
