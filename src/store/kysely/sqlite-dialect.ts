/**
 * Kysely's SQLite dialect (better-sqlite3), with four changes:
 *
 * - transactions start with `BEGIN IMMEDIATE`, so a writer takes the write
 *   lock up front, where the busy timeout applies, instead of failing on a
 *   read-to-write upgrade (see `dialects.ts`);
 * - the adapter declares transactional DDL, which SQLite has, so that the
 *   Migrator runs migrations in a transaction and a crash mid-migration leaves
 *   nothing half-applied;
 * - prepared statements are kept and reused. Kysely's own connection calls
 *   `db.prepare(sql)` for every query, and parsing and planning the SQL costs
 *   SQLite more than running the small statements of a chat turn; a turn runs
 *   the same dozen or so statements (the store compiles those once, so their
 *   text is stable), and a bounded cache keyed by SQL text serves them;
 * - the one connection is handed to waiters in turn (see
 *   `ImmediateSqliteDriver.acquireConnection`);
 * - `direct()` runs compiled queries and transactions on that connection
 *   without Kysely's per-query machinery (a new executor, connection
 *   provider and result pipeline per call, a new Kysely instance per
 *   transaction): on a chat turn's dozen small statements that machinery
 *   costs more CPU than SQLite. It takes the same connection in turn, so it
 *   never runs inside a transaction of Kysely's, nor the reverse.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, SqliteAdapter, SqliteDialect, SqliteDriver, type DatabaseConnection, type DialectAdapter, type Driver, type QueryResult } from 'kysely';

/**
 * The most statements kept per database. A chat turn uses about fifteen; the
 * bound only matters for SQL that varies (imports of different sizes,
 * partial updates), which is prepared, used and eventually evicted.
 */
const statementCacheSize = 200;

/** Runs compiled queries: a Kysely instance or transaction, a {@link DirectSqlite}, or its transaction. */
export interface QueryRunner {
  executeQuery<R>(query: CompiledQuery<R>): Promise<QueryResult<R>>;
}

/** Compiled queries straight to the SQLite connection (see the module comment). */
export interface DirectSqlite extends QueryRunner {
  /** Runs `work` in `BEGIN IMMEDIATE` … `COMMIT`, holding the connection; a throw rolls back. */
  transaction<T>(work: (trx: QueryRunner) => Promise<T>): Promise<T>;
}

export class ImmediateSqliteDialect extends SqliteDialect {
  readonly #database: BetterSqlite3.Database;
  #driver: ImmediateSqliteDriver | undefined;

  constructor(database: BetterSqlite3.Database) {
    super({ database });
    this.#database = database;
  }

  override createDriver(): Driver {
    this.#driver ??= new ImmediateSqliteDriver(this.#database);
    return this.#driver;
  }

  /** The direct runner of the driver Kysely uses (made by then: `new Kysely` creates the driver). */
  direct(): DirectSqlite {
    const driver = this.#driver;
    if (driver === undefined) throw new Error('direct() is for a dialect a Kysely instance was made with.');
    return driver;
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

// Made once: `CompiledQuery.raw` makes a new query id (a random string) at every call.
const begin = CompiledQuery.raw('begin immediate');
const commit = CompiledQuery.raw('commit');
const rollback = CompiledQuery.raw('rollback');

class ImmediateSqliteDriver extends SqliteDriver implements DirectSqlite {
  readonly #connection: CachingSqliteConnection;
  /** Whether a query or transaction holds the one connection. */
  #busy = false;
  /** Those waiting for it, first come first served. */
  readonly #waiting: (() => void)[] = [];

  constructor(database: BetterSqlite3.Database) {
    super({ database });
    this.#connection = new CachingSqliteConnection(database);
  }

  /**
   * One connection, taken in turn. Kysely's own lock wakes every waiter on
   * each release (they all retry, one wins), which with 50 streams queued is
   * 50 wake-ups per query; this queue hands the connection to the next one.
   */
  override async acquireConnection(): Promise<DatabaseConnection> {
    if (this.#busy) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#busy = true;
    return this.#connection;
  }

  override async releaseConnection(): Promise<void> {
    const next = this.#waiting.shift();
    if (next === undefined) this.#busy = false;
    else next(); // still busy: handed over
  }

  async executeQuery<R>(query: CompiledQuery<R>): Promise<QueryResult<R>> {
    const connection = await this.acquireConnection();
    try {
      return await connection.executeQuery<R>(query);
    } finally {
      await this.releaseConnection();
    }
  }

  async transaction<T>(work: (trx: QueryRunner) => Promise<T>): Promise<T> {
    const connection = await this.acquireConnection();
    try {
      await connection.executeQuery(begin);
      try {
        const result = await work(connection);
        await connection.executeQuery(commit);
        return result;
      } catch (error) {
        // As Kysely does: a failed statement or COMMIT (the write lock not had in time) rolls back.
        await connection.executeQuery(rollback);
        throw error;
      }
    } finally {
      await this.releaseConnection();
    }
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(begin);
  }

  override async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(commit);
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(rollback);
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/** Kysely's SQLite connection, with a least-recently-used cache of prepared statements. */
class CachingSqliteConnection implements DatabaseConnection {
  readonly #db: BetterSqlite3.Database;
  /** By SQL text; a Map iterates in insertion order, so the first key is the least recently used. */
  readonly #statements = new Map<string, BetterSqlite3.Statement<unknown[]>>();

  constructor(db: BetterSqlite3.Database) {
    this.#db = db;
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const statement = this.#prepare(compiledQuery.sql);
    const parameters = compiledQuery.parameters as unknown[];
    if (statement.reader) return Promise.resolve({ rows: statement.all(parameters) as R[] });
    const { changes, lastInsertRowid } = statement.run(parameters);
    return Promise.resolve({ numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] });
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    // Not from the cache: a statement being iterated cannot run anything else until the iteration ends.
    const statement = this.#db.prepare<unknown[], R>(compiledQuery.sql);
    if (!statement.reader) throw new Error('SQLite streams only queries that return rows.');
    for (const row of statement.iterate(compiledQuery.parameters as unknown[])) yield { rows: [row] };
  }

  #prepare(sql: string): BetterSqlite3.Statement<unknown[]> {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      if (this.#statements.size >= statementCacheSize) {
        const oldest = this.#statements.keys().next();
        if (oldest.done !== true) this.#statements.delete(oldest.value);
      }
    } else {
      this.#statements.delete(sql); // re-inserted below: now the most recently used
    }
    this.#statements.set(sql, statement);
    return statement;
  }
}
