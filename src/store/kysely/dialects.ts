/**
 * Opening a store from a URL: the only place that knows the database drivers.
 *
 * - `sqlite:PATH`, `sqlite://PATH`, or a bare file path: SQLite through
 *   better-sqlite3. A relative path is resolved against `options.baseDir` (the
 *   data directory); missing directories are created. `sqlite::memory:` is a
 *   private in-memory database (tests).
 * - `postgres://…` or `postgresql://…`: PostgreSQL through a `pg` pool; the URL
 *   is libpq-style (`user:password@host:port/database?sslmode=…`).
 *
 * SQLite is opened for a server with concurrent streams: WAL (readers never
 * block the writer), `synchronous=NORMAL` (durable against a process crash,
 * one fsync per checkpoint instead of per commit), a 5 s busy timeout (another
 * process holding the write lock is waited for, not reported as "database is
 * locked"), foreign keys on (cascading deletes), and `BEGIN IMMEDIATE` for
 * transactions so that a transaction takes the write lock up front, where the
 * busy timeout applies, rather than failing on a read-to-write upgrade. Within
 * one process Kysely serialises the single connection, so concurrent calls
 * queue rather than contend; do not open the same file twice in one process.
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect } from 'kysely';
import { ParlanceError } from '../../errors.js';
import type { ConversationStore } from '../contract.js';
import { ImmediateSqliteDialect } from './sqlite-dialect.js';
import { KyselyConversationStore, type StoreDatabase } from './store.js';

export interface OpenStoreOptions {
  /** Relative SQLite paths are resolved against it (the data directory). Default: the working directory. */
  readonly baseDir?: string;
  /** Identifies this replica for crash recovery with scope `instance`. Default: the host name. */
  readonly instanceId?: string;
  /** How long a streaming reply's lease lasts unless renewed. Default: 15 s. */
  readonly leaseMs?: number;
  /** PostgreSQL: the most connections the pool opens. Default: 10. */
  readonly poolSize?: number;
  /** PostgreSQL: called when an idle pooled connection fails (the server restarted, say). Default: ignored; the pool reconnects. */
  readonly onPoolError?: (error: Error) => void;
}

export type StoreLocation = { readonly dialect: 'sqlite'; readonly path: string } | { readonly dialect: 'postgres'; readonly url: string };

/** Parses a store URL; see the module comment for the forms. Throws `invalid_request` for anything else. */
export function parseStoreUrl(url: string, baseDir: string = process.cwd()): StoreLocation {
  if (/^postgres(ql)?:\/\//i.test(url)) return { dialect: 'postgres', url };
  let path: string;
  if (/^sqlite:/i.test(url)) {
    path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
  } else if (/^[a-z][a-z0-9+.-]+:/i.test(url)) {
    throw new ParlanceError('invalid_request', `Unsupported store URL "${redact(url)}": use sqlite:PATH, a file path, or postgres://…`);
  } else {
    path = url;
  }
  if (path === '') throw new ParlanceError('invalid_request', 'The SQLite store URL names no file.');
  if (path === ':memory:') return { dialect: 'sqlite', path };
  return { dialect: 'sqlite', path: isAbsolute(path) ? path : resolve(baseDir, path) };
}

/** Opens (does not migrate) a store. Call `migrate()` and `recoverInterrupted()` next. */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<ConversationStore> {
  const location = parseStoreUrl(url, options.baseDir);
  const instanceId = options.instanceId ?? hostname();
  if (location.dialect === 'sqlite') {
    if (location.path !== ':memory:') mkdirSync(dirname(location.path), { recursive: true });
    const database = new Database(location.path);
    try {
      database.pragma('journal_mode = WAL');
      database.pragma('busy_timeout = 5000');
      database.pragma('synchronous = NORMAL');
      database.pragma('foreign_keys = ON');
    } catch (error) {
      database.close();
      throw error;
    }
    const dialect = new ImmediateSqliteDialect(database);
    const db = new Kysely<StoreDatabase>({ dialect });
    return new KyselyConversationStore(db, { dialect: 'sqlite', instanceId, direct: dialect.direct(), ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }) });
  }
  // Loaded only for PostgreSQL: a SQLite server's start and memory do without the driver.
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: location.url, max: options.poolSize ?? 10 });
  pool.on('error', options.onPoolError ?? (() => undefined));
  const db = new Kysely<StoreDatabase>({ dialect: new PostgresDialect({ pool }) });
  const store = new KyselyConversationStore(db, { dialect: 'postgres', instanceId, ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }) });
  try {
    await store.ping();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/** Hides the password of a URL for messages. */
function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
