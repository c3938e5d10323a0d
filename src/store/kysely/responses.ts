import type { Kysely } from 'kysely';
import { ParlanceError } from '../../errors.js';
import type { ResponseRecord, ResponseStore } from '../contract.js';
import type { StoreDatabase } from './store.js';

type ResponsesTable = {
  id: string;
  model: string;
  previous_response_id: string | null;
  input: string;
  body: string;
  /** PostgreSQL's bigint comes back as a string; SQLite's as a number. */
  created_at: number | string;
};

// A type, not an interface: Kysely's withTables wants an index-signature-compatible record.
export type ResponsesDatabase = {
  responses: ResponsesTable;
};

function parseJson(text: string, column: string, id: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ParlanceError('internal_error', `the stored response ${id} has an unreadable ${column}`, { cause: error });
  }
}

/** The responses table, through the store's own Kysely instance. */
export class KyselyResponseStore implements ResponseStore {
  constructor(private readonly db: Kysely<StoreDatabase & ResponsesDatabase>) {}

  async saveResponse(record: ResponseRecord): Promise<void> {
    const row = {
      id: record.id,
      model: record.model,
      previous_response_id: record.previousResponseId,
      input: JSON.stringify(record.input),
      body: JSON.stringify(record.body),
      created_at: record.createdAt,
    };
    await this.db
      .insertInto('responses')
      .values(row)
      .onConflict((conflict) => conflict.column('id').doUpdateSet({ model: row.model, previous_response_id: row.previous_response_id, input: row.input, body: row.body, created_at: row.created_at }))
      .execute();
  }

  async getResponse(id: string): Promise<ResponseRecord | undefined> {
    const row = await this.db.selectFrom('responses').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) return undefined;
    const input = parseJson(row.input, 'input', id);
    const body = parseJson(row.body, 'body', id);
    if (!Array.isArray(input) || typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ParlanceError('internal_error', `the stored response ${id} is malformed`);
    }
    return { id: row.id, model: row.model, previousResponseId: row.previous_response_id, createdAt: Number(row.created_at), input, body: body as Record<string, unknown> };
  }

  async deleteResponse(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('responses').where('id', '=', id).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }
}
