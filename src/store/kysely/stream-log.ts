import type { Kysely } from 'kysely';
import type { StoredStream, StreamLogStore } from '../contract.js';
import type { StoreDatabase } from './store.js';

type StreamLogsTable = {
  id: string;
  owner: string | null;
  event_count: number;
  /** PostgreSQL's bigint comes back as a string; SQLite's as a number. */
  created_at: number | string;
  ended_at: number | string | null;
};

type StreamLogEventsTable = {
  stream_id: string;
  seq: number;
  data: string;
};

// A type, not an interface: Kysely's withTables wants an index-signature-compatible record.
export type StreamLogDatabase = {
  stream_logs: StreamLogsTable;
  stream_log_events: StreamLogEventsTable;
};

/** Rows per INSERT: well under SQLite's and PostgreSQL's parameter limits (3 parameters a row). */
const insertChunk = 500;

/** The resumable streams' event logs, through the store's own Kysely instance. */
export class KyselyStreamLogStore implements StreamLogStore {
  constructor(private readonly db: Kysely<StoreDatabase & StreamLogDatabase>) {}

  async createStream(id: string, owner: string | null, createdAt: number): Promise<void> {
    await this.db.insertInto('stream_logs').values({ id, owner, event_count: 0, created_at: createdAt, ended_at: null }).execute();
  }

  async appendEvents(id: string, firstSeq: number, events: readonly string[], endedAt: number | null): Promise<void> {
    // No transaction (SQLite's turns run on a connection of their own): events first, then the count that
    // makes them visible, so a reader never sees a count ahead of its events.
    for (let at = 0; at < events.length; at += insertChunk) {
      const rows = events.slice(at, at + insertChunk).map((data, i) => ({ stream_id: id, seq: firstSeq + at + i, data }));
      // A batch retried after a failure that had in fact been stored is not stored twice.
      await this.db.insertInto('stream_log_events').values(rows).onConflict((conflict) => conflict.columns(['stream_id', 'seq']).doNothing()).execute();
    }
    await this.db
      .updateTable('stream_logs')
      .set({ event_count: firstSeq - 1 + events.length, ...(endedAt === null ? {} : { ended_at: endedAt }) })
      .where('id', '=', id)
      .execute();
  }

  async getStream(id: string): Promise<StoredStream | undefined> {
    const row = await this.db.selectFrom('stream_logs').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) return undefined;
    return { owner: row.owner, eventCount: Number(row.event_count), createdAt: Number(row.created_at), endedAt: row.ended_at === null ? null : Number(row.ended_at) };
  }

  async readEvents(id: string, afterSeq: number, limit: number): Promise<string[]> {
    const rows = await this.db.selectFrom('stream_log_events').select('data').where('stream_id', '=', id).where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
    return rows.map((row) => row.data);
  }

  async deleteEnded(endedBefore: number): Promise<void> {
    // Events first: SQLite enforces the cascade only with foreign keys on, which a store opened elsewhere may not have.
    const ended = this.db.selectFrom('stream_logs').select('id').where('ended_at', '<', endedBefore);
    await this.db.deleteFrom('stream_log_events').where('stream_id', 'in', ended).execute();
    await this.db.deleteFrom('stream_logs').where('ended_at', '<', endedBefore).execute();
  }
}
