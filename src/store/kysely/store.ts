/**
 * The one SQL implementation of the conversation store, on Kysely. The SQL it
 * builds is the portable subset that SQLite and PostgreSQL both run; the only
 * dialect switch is the row lock (`FOR UPDATE`) that PostgreSQL needs and
 * SQLite, whose writers are serialised by `BEGIN IMMEDIATE`, has no syntax for
 * (so SQLite skips that query). The statements of a chat turn are compiled
 * once (`turnQueries`). `dialects.ts` opens the database; see `../contract.ts`
 * for the behaviour, and `docs/decisions/store.md` for the hot path.
 */
import { randomFillSync } from 'node:crypto';
import { Migrator, sql, type ColumnType, type CompiledQuery, type Insertable, type Kysely, type Selectable } from 'kysely';
import { z } from 'zod';
import { ParlanceError } from '../../errors.js';
import {
  interruptedError,
  type ConversationExport,
  type ConversationPage,
  type ConversationPatch,
  type ConversationRecord,
  type ConversationSettings,
  type ConversationStore,
  type ConversationTree,
  type FinishedReply,
  type NewExchange,
  type StartedExchange,
  type ExchangeChoice,
  type StreamingText,
  type ImportOptions,
  type ListConversationsOptions,
  type MessageError,
  type MessageOutcome,
  type MessageRecord,
  type MessageRole,
  type MessageStatus,
  type MessageTimings,
  type MessageUsage,
  type MigrationReport,
  type NewConversation,
  type NewMessage,
  type NewStreamingMessage,
  type RecoverOptions,
  type RecoveryReport,
} from '../contract.js';
import { migrationProvider } from './migrations/index.js';
import { precompile } from './precompiled.js';
import type { DirectSqlite, QueryRunner } from './sqlite-dialect.js';
import { KyselyResponseStore, type ResponsesDatabase } from './responses.js';

// ---------------------------------------------------------------------------
// Schema types (as of the latest migration)

/** Epoch milliseconds: `bigint` columns come back as strings from `pg`, as numbers from SQLite. */
type Millis = ColumnType<number | string, number, number>;

interface ConversationsTable {
  id: string;
  title: string;
  model: string | null;
  system_prompt: string | null;
  /** JSON of {@link ConversationSettings}. */
  settings: string;
  active_leaf_id: string | null;
  created_at: Millis;
  updated_at: Millis;
}

interface MessagesTable {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  role: string;
  content: string;
  status: string;
  model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  first_token_ms: number | null;
  total_ms: number | null;
  error_code: string | null;
  error_message: string | null;
  instance_id: string | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface StoreDatabase {
  conversations: ConversationsTable;
  messages: MessagesTable;
}

type ConversationRow = Selectable<ConversationsTable>;
type MessageRow = Selectable<MessagesTable>;
/** A whole message row to insert: every column given, `null` included. */
type MessageInsert = Required<Insertable<MessagesTable>>;

// ---------------------------------------------------------------------------
// Ids and time

let lastIdMs = 0;
let idSequence = 0;

/**
 * Random bytes for ids, drawn 4 KiB at a time: one call into the CSPRNG per
 * 256 ids instead of one per id (as `crypto.randomUUID` does by default).
 */
const randomPool = Buffer.alloc(4096);
let randomOffset = randomPool.length;

/** 16 fresh random bytes, the caller's to overwrite (a view of the pool, never handed out twice). */
function random16(): Buffer {
  if (randomOffset === randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const bytes = randomPool.subarray(randomOffset, randomOffset + 16);
  randomOffset += 16;
  return bytes;
}

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit sequence
 * (method 1 of the RFC: random start each millisecond, +1 within it, so ids
 * made by one process sort in the order they were made), then 62 random bits.
 */
export function uuidv7(): string {
  const bytes = random16();
  const now = Date.now();
  if (now > lastIdMs) {
    lastIdMs = now;
    idSequence = (((bytes[6] ?? 0) << 8) | (bytes[7] ?? 0)) & 0x7ff; // leave room to count up
  } else if (++idSequence > 0xfff) {
    lastIdMs += 1;
    idSequence = 0;
  }
  let ms = lastIdMs;
  for (let i = 5; i >= 0; i -= 1) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = 0x70 | (idSequence >> 8);
  bytes[7] = idSequence & 0xff;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

let lastTime = 0;

/**
 * Epoch ms that never goes backwards and never repeats within this process, so
 * that two changes to conversations are always ordered. Under a burst of
 * writes it may run a little ahead of the wall clock, which catches up.
 */
function now(): number {
  const time = Date.now();
  lastTime = time > lastTime ? time : lastTime + 1;
  return lastTime;
}

/** Epoch ms that never goes backwards, repeats allowed: for the hot path (streaming text), which must not push {@link now} ahead. */
function wallNow(): number {
  return Math.max(Date.now(), lastTime);
}

// ---------------------------------------------------------------------------
// Validation

const nonNegativeInt = z.number().int().nonnegative();
const millis = z.number().int().nonnegative();

const settingsSchema = z.strictObject({
  maxTokens: z.number().int().positive().optional(),
  temperature: z.number().nonnegative().optional(),
  topP: z.number().nonnegative().max(1).optional(),
  seed: z.number().int().optional(),
  stop: z.array(z.string()).optional(),
});

const usageSchema = z.strictObject({ promptTokens: nonNegativeInt, completionTokens: nonNegativeInt });
const timingsSchema = z.strictObject({ firstTokenMs: nonNegativeInt.nullable(), totalMs: nonNegativeInt });
const errorSchema = z.strictObject({ code: z.string().min(1), message: z.string() });
const roleSchema = z.enum(['system', 'user', 'assistant']);
const statusSchema = z.enum(['streaming', 'complete', 'stopped', 'failed']);
const finalStatusSchema = z.enum(['complete', 'stopped', 'failed']);
const idSchema = z.string().min(1).max(200);

const exportSchema = z.strictObject({
  format: z.literal('parlance.conversation'),
  version: z.literal(1),
  exportedAt: millis,
  conversation: z.strictObject({
    id: idSchema,
    title: z.string(),
    model: z.string().nullable(),
    systemPrompt: z.string().nullable(),
    settings: settingsSchema,
    activeLeafId: idSchema.nullable(),
    createdAt: millis,
    updatedAt: millis,
  }),
  messages: z.array(
    z.strictObject({
      id: idSchema,
      conversationId: idSchema,
      parentId: idSchema.nullable(),
      role: roleSchema,
      content: z.string(),
      status: statusSchema,
      model: z.string().nullable(),
      usage: usageSchema.nullable(),
      timings: timingsSchema.nullable(),
      error: errorSchema.nullable(),
      createdAt: millis,
      updatedAt: millis,
    }),
  ),
});

function invalid(param: string, message: string): ParlanceError {
  return new ParlanceError('invalid_request', message, { param });
}

/** Validates settings and drops absent fields (zod's output has `undefined`s that exact optional types refuse). */
function checkSettings(value: unknown, param = 'settings'): ConversationSettings {
  const parsed = settingsSchema.safeParse(value);
  if (!parsed.success) throw invalid(param, `Invalid conversation settings: ${parsed.error.issues[0]?.message ?? 'malformed'}.`);
  const { maxTokens, temperature, topP, seed, stop } = parsed.data;
  return {
    ...(maxTokens === undefined ? {} : { maxTokens }),
    ...(temperature === undefined ? {} : { temperature }),
    ...(topP === undefined ? {} : { topP }),
    ...(seed === undefined ? {} : { seed }),
    ...(stop === undefined ? {} : { stop }),
  };
}

function checkWith<T>(schema: z.ZodType<T>, value: unknown, param: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(param, `Invalid ${param}: ${parsed.error.issues[0]?.message ?? 'malformed'}.`);
  return parsed.data;
}

/** Checks the parent, model and title of an exchange; drops an absent title. */
function checkChoice(choice: ExchangeChoice): ExchangeChoice {
  const { parentId } = choice;
  if (parentId !== null) checkString(parentId, 'parentId');
  const model = checkString(choice.model, 'model');
  return choice.title === undefined ? { parentId, model } : { parentId, model, title: checkString(choice.title, 'title') };
}

function checkString(value: unknown, param: string): string {
  if (typeof value !== 'string') throw invalid(param, `${param} must be a string.`);
  return value;
}

// ---------------------------------------------------------------------------
// Rows ↔ records

function toConversation(row: ConversationRow): ConversationRecord {
  return {
    id: row.id,
    title: row.title,
    model: row.model,
    systemPrompt: row.system_prompt,
    // Trusted: settings are validated on the way in (create, update, import), not on every read.
    settings: JSON.parse(row.settings) as ConversationSettings,
    activeLeafId: row.active_leaf_id,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toMessage(row: MessageRow): MessageRecord {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    parentId: row.parent_id,
    role: row.role as MessageRole,
    content: row.content,
    status: row.status as MessageStatus,
    model: row.model,
    usage: row.prompt_tokens === null || row.completion_tokens === null ? null : { promptTokens: row.prompt_tokens, completionTokens: row.completion_tokens },
    timings: row.total_ms === null ? null : { firstTokenMs: row.first_token_ms, totalMs: row.total_ms },
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** A reply as it is first stored: empty, `streaming`, nothing measured yet. */
function streamingReply(id: string, conversationId: string, parentId: string, model: string, time: number): MessageRecord {
  return { id, conversationId, parentId, role: 'assistant', content: '', status: 'streaming', model, usage: null, timings: null, error: null, createdAt: time, updatedAt: time };
}

function usageColumns(usage: MessageUsage | null | undefined): Pick<MessagesTable, 'prompt_tokens' | 'completion_tokens'> {
  return { prompt_tokens: usage?.promptTokens ?? null, completion_tokens: usage?.completionTokens ?? null };
}

function timingsColumns(timings: MessageTimings | null | undefined): Pick<MessagesTable, 'first_token_ms' | 'total_ms'> {
  return { first_token_ms: timings?.firstTokenMs ?? null, total_ms: timings?.totalMs ?? null };
}

function errorColumns(error: MessageError | null | undefined): Pick<MessagesTable, 'error_code' | 'error_message'> {
  return { error_code: error?.code ?? null, error_message: error?.message ?? null };
}

function messageRow(message: MessageRecord, instanceId: string | null): MessageInsert {
  return {
    id: message.id,
    conversation_id: message.conversationId,
    parent_id: message.parentId,
    role: message.role,
    content: message.content,
    status: message.status,
    model: message.model,
    ...usageColumns(message.usage),
    ...timingsColumns(message.timings),
    ...errorColumns(message.error),
    instance_id: instanceId,
    created_at: message.createdAt,
    updated_at: message.updatedAt,
  };
}

// ---------------------------------------------------------------------------
// Trees

function byAge(a: MessageRecord, b: MessageRecord): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The path from a root to `leafId`, root first; empty when `leafId` is null or unknown. */
function pathTo(leafId: string | null, messages: readonly MessageRecord[]): MessageRecord[] {
  const byId = new Map(messages.map((m) => [m.id, m]));
  const path: MessageRecord[] = [];
  const seen = new Set<string>();
  for (let m = leafId === null ? undefined : byId.get(leafId); m !== undefined && !seen.has(m.id); m = m.parentId === null ? undefined : byId.get(m.parentId)) {
    seen.add(m.id);
    path.push(m);
  }
  return path.reverse();
}

/** Goes down from `id`, taking the newest child at each step. */
function newestLeafUnder(id: string, messages: readonly MessageRecord[]): string {
  const newestChild = new Map<string, MessageRecord>();
  for (const m of messages) {
    if (m.parentId === null) continue;
    const current = newestChild.get(m.parentId);
    if (current === undefined || byAge(current, m) < 0) newestChild.set(m.parentId, m);
  }
  let leaf = id;
  const seen = new Set<string>();
  for (let child = newestChild.get(leaf); child !== undefined && !seen.has(child.id); child = newestChild.get(leaf)) {
    seen.add(child.id);
    leaf = child.id;
  }
  return leaf;
}

/**
 * Orders messages so that every parent comes before its children, oldest first
 * among those ready. Throws `invalid_request` when a parent is missing or the
 * parents form a cycle.
 */
function parentsFirst(messages: readonly MessageRecord[]): MessageRecord[] {
  const sorted = [...messages].sort(byAge);
  const ids = new Set(sorted.map((m) => m.id));
  const children = new Map<string | null, MessageRecord[]>();
  for (const m of sorted) {
    if (m.parentId !== null && !ids.has(m.parentId)) throw invalid('messages', `Message ${m.id} names a parent (${m.parentId}) that is not among the messages.`);
    const list = children.get(m.parentId) ?? [];
    list.push(m);
    children.set(m.parentId, list);
  }
  const ordered: MessageRecord[] = [];
  const stack = [...(children.get(null) ?? [])].reverse();
  while (stack.length > 0) {
    const m = stack.pop();
    if (m === undefined) break;
    ordered.push(m);
    stack.push(...[...(children.get(m.id) ?? [])].reverse());
  }
  if (ordered.length !== sorted.length) throw invalid('messages', 'The messages do not form a tree: their parents form a cycle.');
  return ordered;
}

// ---------------------------------------------------------------------------
// Cursors

function encodeCursor(conversation: ConversationRecord): string {
  return Buffer.from(`${conversation.updatedAt}.${conversation.id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { updatedAt: number; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const dot = text.indexOf('.');
  const updatedAt = Number(text.slice(0, dot));
  const id = text.slice(dot + 1);
  if (dot <= 0 || !Number.isSafeInteger(updatedAt) || id === '') throw invalid('cursor', 'The cursor is not one this server returned.');
  return { updatedAt, id };
}

// ---------------------------------------------------------------------------
// The statements of a chat turn

/**
 * The statements a chat turn runs (read the conversation, add the user's
 * message, select its branch, start the reply, save its text, finish it),
 * compiled once per store: see `precompiled.ts`. The rest of the store builds
 * its queries per call; they run rarely, or their shape varies.
 */
function turnQueries(db: Kysely<StoreDatabase>, dialect: 'sqlite' | 'postgres') {
  return {
    conversation: precompile((p: { id: string }) => db.selectFrom('conversations').selectAll().where('id', '=', p.id)),
    /** The conversation, inside a write transaction: on PostgreSQL its row is locked until the transaction ends. */
    conversationLocked: precompile((p: { id: string }) =>
      db
        .selectFrom('conversations')
        .selectAll()
        .where('id', '=', p.id)
        .$if(dialect === 'postgres', (qb) => qb.forUpdate()),
    ),
    /** The conversation's id if it exists; on PostgreSQL it also locks the row until the transaction ends. */
    lockConversation: precompile((p: { id: string }) =>
      db
        .selectFrom('conversations')
        .select('id')
        .where('id', '=', p.id)
        .$if(dialect === 'postgres', (qb) => qb.forUpdate()),
    ),
    message: precompile((p: { id: string }) => db.selectFrom('messages').selectAll().where('id', '=', p.id)),
    messageConversation: precompile((p: { id: string }) => db.selectFrom('messages').select('conversation_id').where('id', '=', p.id)),
    messageStatus: precompile((p: { id: string }) => db.selectFrom('messages').select('status').where('id', '=', p.id)),
    messagesOf: precompile((p: { conversationId: string }) =>
      db.selectFrom('messages').selectAll().where('conversation_id', '=', p.conversationId).orderBy('created_at').orderBy('id'),
    ),
    insertMessage: precompile((p: MessageInsert) =>
      db.insertInto('messages').values({
        id: p.id,
        conversation_id: p.conversation_id,
        parent_id: p.parent_id,
        role: p.role,
        content: p.content,
        status: p.status,
        model: p.model,
        prompt_tokens: p.prompt_tokens,
        completion_tokens: p.completion_tokens,
        first_token_ms: p.first_token_ms,
        total_ms: p.total_ms,
        error_code: p.error_code,
        error_message: p.error_message,
        instance_id: p.instance_id,
        created_at: p.created_at,
        updated_at: p.updated_at,
      }),
    ),
    /** A message was added: it is the active leaf, and the conversation changed. */
    messageAdded: precompile((p: { id: string; leaf: string; time: number }) =>
      db.updateTable('conversations').set({ active_leaf_id: p.leaf, updated_at: p.time }).where('id', '=', p.id),
    ),
    /** The first exchange also names the conversation. */
    messageAddedTitled: precompile((p: { id: string; leaf: string; time: number; title: string }) =>
      db.updateTable('conversations').set({ active_leaf_id: p.leaf, updated_at: p.time, title: p.title }).where('id', '=', p.id),
    ),
    /**
     * The branch ending at a message, leaf first (`depth` 0): one walk up the parents through the
     * primary key, instead of reading every message of the conversation to walk them in memory.
     */
    branch: precompile((p: { id: string; conversationId: string }) =>
      db
        .withRecursive('branch(id, parent_id, depth)', (qb) =>
          qb
            .selectFrom('messages')
            .select(['id', 'parent_id', sql<number>`0`.as('depth')])
            .where('id', '=', p.id)
            .where('conversation_id', '=', p.conversationId)
            .unionAll((up) =>
              up
                .selectFrom('messages')
                .innerJoin('branch', 'branch.parent_id', 'messages.id')
                .select(['messages.id', 'messages.parent_id', sql<number>`branch.depth + 1`.as('depth')]),
            ),
        )
        .selectFrom('branch')
        .innerJoin('messages', 'messages.id', 'branch.id')
        .selectAll('messages')
        .orderBy('branch.depth', 'desc'),
    ),
    /** Writes only when the leaf changes: selecting the branch that is already active (every turn does) writes nothing. */
    selectLeaf: precompile((p: { id: string; leaf: string }) =>
      db
        .updateTable('conversations')
        .set({ active_leaf_id: p.leaf })
        .where('id', '=', p.id)
        .where((eb) => eb.or([eb('active_leaf_id', 'is', null), eb('active_leaf_id', '<>', p.leaf)])),
    ),
    touchConversation: precompile((p: { id: string; time: number }) => db.updateTable('conversations').set({ updated_at: p.time }).where('id', '=', p.id).returningAll()),
    streamingText: precompile((p: { id: string; content: string; time: number }) =>
      db.updateTable('messages').set({ content: p.content, updated_at: p.time }).where('id', '=', p.id).where('status', '=', 'streaming'),
    ),
    finishMessage: precompile(
      (
        p: Pick<MessageInsert, 'status' | 'prompt_tokens' | 'completion_tokens' | 'first_token_ms' | 'total_ms' | 'error_code' | 'error_message'> & {
          id: string;
          /** `null` keeps the text of the last update. */
          content: string | null;
          time: number;
        },
      ) =>
        db
          .updateTable('messages')
          .set((eb) => ({
            status: p.status,
            content: eb.fn.coalesce(eb.val(p.content), eb.ref('content')),
            prompt_tokens: p.prompt_tokens,
            completion_tokens: p.completion_tokens,
            first_token_ms: p.first_token_ms,
            total_ms: p.total_ms,
            error_code: p.error_code,
            error_message: p.error_message,
            instance_id: null,
            updated_at: p.time,
          }))
          .where('id', '=', p.id)
          .where('status', '=', 'streaming')
          .returningAll(),
    ),
  };
}

/** The first row a query returns. */
async function first<R>(db: QueryRunner, query: CompiledQuery<R>): Promise<R | undefined> {
  return (await db.executeQuery(query)).rows[0];
}

/** How many rows a write changed. */
async function affected(db: QueryRunner, query: CompiledQuery): Promise<bigint> {
  return (await db.executeQuery(query)).numAffectedRows ?? 0n;
}

// ---------------------------------------------------------------------------
// Branches remembered

/**
 * The branches this process's replies ended, by the id of the reply that ends
 * each: the next turn of a conversation answers that reply, and its history is
 * that branch plus the new message, without reading it again (the read grows
 * with the conversation). Sound because a branch never changes once its last
 * message is final: messages are only added, a final message is never written
 * again, and parents never change; only a whole conversation is deleted (its
 * branches are forgotten then, and after that no message of it can be a parent).
 * One branch per conversation, least recently used first out, bounded by the
 * text it holds.
 */
class BranchMemory {
  readonly #byLeaf = new Map<string, { readonly path: readonly MessageRecord[]; readonly chars: number }>();
  /** The leaf remembered for each conversation. */
  readonly #leafOf = new Map<string, string>();
  /** Branches of replies still streaming, by reply id, until they end. */
  readonly #streaming = new Map<string, readonly MessageRecord[]>();
  #chars = 0;

  constructor(
    private readonly maxChars: number,
    private readonly maxStreaming: number,
  ) {}

  /** The branch ending with `leafId`, root first, if remembered. */
  get(leafId: string): readonly MessageRecord[] | undefined {
    const entry = this.#byLeaf.get(leafId);
    if (entry === undefined) return undefined;
    this.#byLeaf.delete(leafId); // re-inserted: now the most recently used
    this.#byLeaf.set(leafId, entry);
    return entry.path;
  }

  /** A reply started: `path` is the branch it answers, its last message the reply's parent. */
  started(replyId: string, path: readonly MessageRecord[]): void {
    if (path.some((m) => m.status === 'streaming')) return; // a branch with a reply still growing is not final
    if (this.#streaming.size >= this.maxStreaming) {
      const oldest = this.#streaming.keys().next();
      if (oldest.done !== true) this.#streaming.delete(oldest.value);
    }
    this.#streaming.set(replyId, path);
  }

  /** A reply ended: its branch, with the final reply, is the conversation's latest. */
  finished(reply: MessageRecord): void {
    const above = this.#streaming.get(reply.id);
    if (above === undefined) return;
    this.#streaming.delete(reply.id);
    this.forget(reply.conversationId);
    const path = [...above, reply];
    const chars = path.reduce((n, m) => n + m.content.length, 0);
    if (chars > this.maxChars) return;
    this.#byLeaf.set(reply.id, { path, chars });
    this.#leafOf.set(reply.conversationId, reply.id);
    this.#chars += chars;
    for (const [leaf, entry] of this.#byLeaf) {
      if (this.#chars <= this.maxChars) break;
      this.#byLeaf.delete(leaf);
      this.#chars -= entry.chars;
      const conversationId = entry.path.at(-1)?.conversationId;
      if (conversationId !== undefined && this.#leafOf.get(conversationId) === leaf) this.#leafOf.delete(conversationId);
    }
  }

  /** Forgets a conversation's branch (it is deleted, or has a newer one). */
  forget(conversationId: string): void {
    const leaf = this.#leafOf.get(conversationId);
    if (leaf === undefined) return;
    this.#leafOf.delete(conversationId);
    const entry = this.#byLeaf.get(leaf);
    if (entry === undefined) return;
    this.#byLeaf.delete(leaf);
    this.#chars -= entry.chars;
  }
}

// ---------------------------------------------------------------------------
// The store

export interface KyselyStoreOptions {
  readonly dialect: 'sqlite' | 'postgres';
  /** Recorded on streaming messages; see `RecoverOptions.scope`. */
  readonly instanceId: string;
  /**
   * SQLite: runs the compiled queries of a turn without Kysely's per-query machinery (see
   * `sqlite-dialect.ts`). Absent (PostgreSQL), they go through Kysely.
   */
  readonly direct?: DirectSqlite;
}

const defaultTitle = 'New conversation';
/** Rows per INSERT when importing: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters. */
const insertChunk = 500;

export class KyselyConversationStore implements ConversationStore {
  readonly dialect: 'sqlite' | 'postgres';
  readonly responses: KyselyResponseStore;
  readonly #db: Kysely<StoreDatabase>;
  readonly #instanceId: string;
  readonly #turn: ReturnType<typeof turnQueries>;
  /** Runs the compiled queries (`#turn`): the direct SQLite runner, or Kysely. */
  readonly #run: QueryRunner;
  /** A transaction for compiled queries only (no query building inside). */
  readonly #transaction: <T>(work: (trx: QueryRunner) => Promise<T>) => Promise<T>;
  #closed: Promise<void> | undefined;
  /** At most 8 M characters of conversation text (16 MB) remembered; see BranchMemory. */
  readonly #branches = new BranchMemory(8_000_000, 10_000);

  constructor(db: Kysely<StoreDatabase>, options: KyselyStoreOptions) {
    this.#db = db;
    this.dialect = options.dialect;
    this.responses = new KyselyResponseStore(db.withTables<ResponsesDatabase>());
    this.#instanceId = options.instanceId;
    this.#turn = turnQueries(db, options.dialect);
    const direct = options.direct;
    this.#run = direct ?? db;
    this.#transaction = direct === undefined ? (work) => db.transaction().execute(work) : (work) => direct.transaction(work);
  }

  /** Runs a trivial query: fails fast when the database cannot be reached. */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.#db);
  }

  async migrate(): Promise<MigrationReport> {
    const migrator = new Migrator({ db: this.#db, provider: migrationProvider });
    const { error, results = [] } = await migrator.migrateToLatest();
    if (error !== undefined) {
      const failed = results.find((r) => r.status === 'Error');
      throw new Error(`Store migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const migrations = await migrator.getMigrations();
    const executed = migrations.filter((m) => m.executedAt !== undefined);
    return {
      applied: results.filter((r) => r.status === 'Success' && r.direction === 'Up').map((r) => r.migrationName),
      current: executed.at(-1)?.name ?? null,
    };
  }

  async recoverInterrupted(options: RecoverOptions = {}): Promise<RecoveryReport> {
    const time = wallNow();
    const { scope = 'all', staleAfterMs } = options;
    const rows = await this.#db
      .updateTable('messages')
      .set({ status: 'failed', ...errorColumns(interruptedError), instance_id: null, updated_at: time })
      .where('status', '=', 'streaming')
      .$if(scope === 'instance', (qb) =>
        qb.where((eb) =>
          staleAfterMs === undefined
            ? eb('instance_id', '=', this.#instanceId)
            : eb.or([eb('instance_id', '=', this.#instanceId), eb('updated_at', '<', time - staleAfterMs)]),
        ),
      )
      .returning('id')
      .execute();
    return { failed: rows.map((r) => r.id) };
  }

  // --- conversations -------------------------------------------------------

  async createConversation(input: NewConversation = {}): Promise<ConversationRecord> {
    const time = now();
    const row: ConversationRow = {
      id: uuidv7(),
      title: input.title === undefined ? defaultTitle : checkString(input.title, 'title'),
      model: input.model ?? null,
      system_prompt: input.systemPrompt ?? null,
      settings: JSON.stringify(checkSettings(input.settings ?? {})),
      active_leaf_id: null,
      created_at: time,
      updated_at: time,
    };
    await this.#db.insertInto('conversations').values({ ...row, created_at: time, updated_at: time }).execute();
    return toConversation(row);
  }

  async getConversation(id: string): Promise<ConversationRecord | undefined> {
    const row = await first(this.#run, this.#turn.conversation({ id }));
    return row === undefined ? undefined : toConversation(row);
  }

  async listConversations(options: ListConversationsOptions = {}): Promise<ConversationPage> {
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalid('limit', 'limit must be an integer from 1 to 100.');
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const rows = await this.#db
      .selectFrom('conversations')
      .selectAll()
      .$if(after !== undefined, (qb) =>
        qb.where((eb) =>
          after === undefined
            ? eb.val(true)
            : eb.or([eb('updated_at', '<', after.updatedAt), eb.and([eb('updated_at', '=', after.updatedAt), eb('id', '<', after.id)])]),
        ),
      )
      .orderBy('updated_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    const conversations = rows.slice(0, limit).map(toConversation);
    const last = conversations.at(-1);
    return { conversations, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last) : null };
  }

  async updateConversation(id: string, patch: ConversationPatch): Promise<ConversationRecord> {
    const row = await this.#db
      .updateTable('conversations')
      .set({
        ...(patch.title === undefined ? {} : { title: checkString(patch.title, 'title') }),
        ...(patch.model === undefined ? {} : { model: patch.model }),
        ...(patch.systemPrompt === undefined ? {} : { system_prompt: patch.systemPrompt }),
        ...(patch.settings === undefined ? {} : { settings: JSON.stringify(checkSettings(patch.settings)) }),
        updated_at: now(),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (row === undefined) throw notFound('conversation', id);
    return toConversation(row);
  }

  async deleteConversation(id: string): Promise<void> {
    // One statement: the foreign keys cascade to the messages, atomically.
    this.#branches.forget(id);
    const result = await this.#db.deleteFrom('conversations').where('id', '=', id).executeTakeFirst();
    if (result.numDeletedRows === 0n) throw notFound('conversation', id);
  }

  // --- messages ------------------------------------------------------------

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    const row = await first(this.#run, this.#turn.message({ id }));
    return row === undefined ? undefined : toMessage(row);
  }

  async getTree(conversationId: string): Promise<ConversationTree | undefined> {
    // The conversation first, then its messages: messages are only ever added, so the
    // active leaf read first is among the messages read second (unless it was deleted meanwhile).
    const conversation = await this.getConversation(conversationId);
    if (conversation === undefined) return undefined;
    const messages = await this.#messagesOf(this.#run, conversationId);
    const path = pathTo(conversation.activeLeafId, messages);
    if (conversation.activeLeafId !== null && path.length === 0) return undefined;
    return { conversation, messages, activePath: path.map((m) => m.id) };
  }

  async getActivePath(conversationId: string): Promise<readonly MessageRecord[] | undefined> {
    const tree = await this.getTree(conversationId);
    if (tree === undefined) return undefined;
    const byId = new Map(tree.messages.map((m) => [m.id, m]));
    return tree.activePath.flatMap((id) => byId.get(id) ?? []);
  }

  async selectBranch(conversationId: string, messageId: string): Promise<readonly MessageRecord[]> {
    return this.#transaction(async (trx) => {
      // PostgreSQL: lock the conversation, so that a message added meanwhile cannot be missed
      // by the newest-child walk. SQLite's BEGIN IMMEDIATE already excludes every other writer.
      if (this.dialect === 'postgres') await this.#requireConversation(trx, conversationId);
      const messages = await this.#messagesOf(trx, conversationId);
      if (!messages.some((m) => m.id === messageId)) {
        // No messages at all may mean no conversation, which is the error to report then.
        if (messages.length === 0) await this.#requireConversation(trx, conversationId);
        throw notFound('message', messageId, 'messageId');
      }
      const leaf = newestLeafUnder(messageId, messages);
      await trx.executeQuery(this.#turn.selectLeaf({ id: conversationId, leaf }));
      return pathTo(leaf, messages);
    });
  }

  async appendMessage(input: NewMessage): Promise<MessageRecord> {
    const role = checkWith(roleSchema, input.role, 'role');
    const content = checkString(input.content, 'content');
    const usage = input.usage == null ? null : checkWith(usageSchema, input.usage, 'usage');
    const timings = input.timings == null ? null : checkWith(timingsSchema, input.timings, 'timings');
    return this.#addMessage(input.conversationId, input.parentId, (id, time) => ({
      id,
      conversationId: input.conversationId,
      parentId: input.parentId,
      role,
      content,
      status: 'complete',
      model: input.model ?? null,
      usage,
      timings,
      error: null,
      createdAt: time,
      updatedAt: time,
    }));
  }

  async startAssistantMessage(input: NewStreamingMessage): Promise<MessageRecord> {
    const model = checkString(input.model, 'model');
    return this.#addMessage(input.conversationId, input.parentId, (id, time) => streamingReply(id, input.conversationId, input.parentId, model, time));
  }

  async updateStreamingText(messageId: string, content: string): Promise<boolean> {
    return (await affected(this.#run, this.#turn.streamingText({ id: messageId, content, time: wallNow() }))) > 0n;
  }

  async updateStreamingTexts(texts: readonly StreamingText[]): Promise<readonly string[]> {
    if (texts.length === 0) return [];
    for (const text of texts) {
      checkString(text.messageId, 'messageId');
      checkString(text.content, 'content');
    }
    // One transaction: on SQLite one commit (one WAL append) for every stream's save instead of one each;
    // on PostgreSQL one fsync. The updates are the same as updateStreamingText's.
    return this.#transaction(async (trx) => {
      const time = wallNow();
      const gone: string[] = [];
      for (const text of texts) {
        if ((await affected(trx, this.#turn.streamingText({ id: text.messageId, content: text.content, time }))) === 0n) gone.push(text.messageId);
      }
      return gone;
    });
  }

  async startExchange(input: NewExchange): Promise<StartedExchange> {
    const { conversationId } = input;
    checkString(conversationId, 'conversationId');
    const decide = 'decide' in input ? input.decide : undefined;
    const given = decide === undefined ? checkChoice(input as NewExchange & ExchangeChoice) : undefined;
    const content = given === undefined ? undefined : checkString(input.content, 'content');
    return this.#transaction(async (trx) => {
      let before: ConversationRecord | undefined;
      let choice: ExchangeChoice;
      if (decide !== undefined) {
        // The turn's read of the conversation, inside the write transaction (locked on PostgreSQL): no
        // read transaction of its own before it, and what `decide` sees is what the exchange follows.
        const row = await first(trx, this.#turn.conversationLocked({ id: conversationId }));
        if (row === undefined) throw notFound('conversation', conversationId);
        before = toConversation(row);
        choice = checkChoice(decide(before));
      } else {
        // As in #addMessage: PostgreSQL locks the conversation before reading the clock; on SQLite
        // BEGIN IMMEDIATE has, and the UPDATE finds out whether the conversation exists.
        if (this.dialect === 'postgres') await this.#requireConversation(trx, conversationId);
        choice = given as ExchangeChoice;
      }
      const { parentId, model, title } = choice;
      const text = content ?? checkString(input.content, 'content');
      // Two readings of the clock, as two appends would make: the reply is newer than the message it answers.
      const userTime = now();
      const userMessage: MessageRecord = {
        id: uuidv7(),
        conversationId,
        parentId,
        role: 'user',
        content: text,
        status: 'complete',
        model: null,
        usage: null,
        timings: null,
        error: null,
        createdAt: userTime,
        updatedAt: userTime,
      };
      const time = now();
      const assistantMessage = streamingReply(uuidv7(), conversationId, userMessage.id, model, time);
      const added = await affected(
        trx,
        title === undefined
          ? this.#turn.messageAdded({ id: conversationId, leaf: assistantMessage.id, time })
          : this.#turn.messageAddedTitled({ id: conversationId, leaf: assistantMessage.id, time, title }),
      );
      if (added === 0n) throw notFound('conversation', conversationId, 'conversationId');
      let above: readonly MessageRecord[] = [];
      if (parentId !== null) {
        const remembered = this.#branches.get(parentId);
        if (remembered === undefined) {
          // The walk up from the parent is also its check: no rows, no such message in this conversation.
          above = (await trx.executeQuery(this.#turn.branch({ id: parentId, conversationId }))).rows.map(toMessage);
        } else {
          // Still checked: the conversation may have been deleted and the parent with it (by another replica).
          const parent = await first(trx, this.#turn.messageConversation({ id: parentId }));
          if (parent?.conversation_id === conversationId) above = remembered;
        }
        if (above.length === 0) throw notFound('message', parentId, 'parentId', ` in conversation ${conversationId}`);
      }
      await trx.executeQuery(this.#turn.insertMessage(messageRow(userMessage, null)));
      await trx.executeQuery(this.#turn.insertMessage(messageRow(assistantMessage, this.#instanceId)));
      const path = [...above, userMessage];
      this.#branches.started(assistantMessage.id, path);
      return before === undefined ? { userMessage, assistantMessage, path } : { userMessage, assistantMessage, path, conversation: before };
    });
  }

  async finishMessage(messageId: string, outcome: MessageOutcome): Promise<MessageRecord> {
    return (await this.finishReply(messageId, outcome)).message;
  }

  async finishReply(messageId: string, outcome: MessageOutcome): Promise<FinishedReply> {
    const status = checkWith(finalStatusSchema, outcome.status, 'status');
    const error = outcome.status === 'failed' ? checkWith(errorSchema, outcome.error, 'error') : null;
    const usage = outcome.usage == null ? null : checkWith(usageSchema, outcome.usage, 'usage');
    const timings = outcome.timings == null ? null : checkWith(timingsSchema, outcome.timings, 'timings');
    const content = outcome.content === undefined ? null : checkString(outcome.content, 'content');
    const finished = await this.#transaction(async (trx) => {
      const time = now();
      const finish = { id: messageId, status, content, ...usageColumns(usage), ...timingsColumns(timings), ...errorColumns(error), time };
      const row = await first(trx, this.#turn.finishMessage(finish));
      if (row === undefined) {
        const existing = await first(trx, this.#turn.messageStatus({ id: messageId }));
        if (existing === undefined) throw notFound('message', messageId, 'messageId');
        throw new ParlanceError('invalid_request', `Message ${messageId} is not streaming (it is ${existing.status}).`, { param: 'messageId' });
      }
      // RETURNING: the final frame of a reply shows the conversation, and this is it, without another read.
      const conversation = await first(trx, this.#turn.touchConversation({ id: row.conversation_id, time }));
      if (conversation === undefined) throw notFound('conversation', row.conversation_id);
      return { message: toMessage(row), conversation: toConversation(conversation) };
    });
    this.#branches.finished(finished.message);
    return finished;
  }

  // --- export / import -----------------------------------------------------

  async exportConversation(id: string): Promise<ConversationExport | undefined> {
    const tree = await this.getTree(id);
    if (tree === undefined) return undefined;
    return { format: 'parlance.conversation', version: 1, exportedAt: now(), conversation: tree.conversation, messages: parentsFirst(tree.messages) };
  }

  async importConversation(data: unknown, options: ImportOptions = {}): Promise<ConversationRecord> {
    const parsed = exportSchema.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw invalid(issue === undefined ? 'data' : ['data', ...issue.path].join('.'), `Not a Parlance conversation export: ${issue?.message ?? 'malformed'}.`);
    }
    const source = parsed.data;
    const conversationId = source.conversation.id;
    const messages: MessageRecord[] = source.messages.map((m, index) => {
      if (m.conversationId !== conversationId) throw invalid(`data.messages.${index}.conversationId`, 'A message belongs to another conversation.');
      if ((m.status === 'failed') !== (m.error !== null)) throw invalid(`data.messages.${index}.error`, 'A message has an error if, and only if, it failed.');
      return m.status === 'streaming' ? { ...m, status: 'failed', error: interruptedError } : m;
    });
    if (new Set(messages.map((m) => m.id)).size !== messages.length) throw invalid('data.messages', 'Two messages have the same id.');
    const ordered = parentsFirst(messages);
    const leaf = source.conversation.activeLeafId;
    if (leaf !== null && !messages.some((m) => m.id === leaf)) throw invalid('data.conversation.activeLeafId', 'The active leaf is not among the messages.');

    const newId = new Map<string, string>();
    const mapId = (id: string): string => {
      if (options.keepIds === true) return id;
      let mapped = newId.get(id);
      if (mapped === undefined) {
        mapped = uuidv7();
        newId.set(id, mapped);
      }
      return mapped;
    };
    const conversation: ConversationRecord = {
      ...source.conversation,
      id: mapId(conversationId),
      settings: checkSettings(source.conversation.settings, 'data.conversation.settings'),
      activeLeafId: null,
    };
    const rows = ordered.map((m) => messageRow({ ...m, id: mapId(m.id), conversationId: conversation.id, parentId: m.parentId === null ? null : mapId(m.parentId) }, null));
    const imported: ConversationRecord = { ...conversation, activeLeafId: leaf === null ? null : mapId(leaf) };

    await this.#db.transaction().execute(async (trx) => {
      await trx.insertInto('conversations').values(this.#conversationRow(imported)).execute();
      for (let i = 0; i < rows.length; i += insertChunk) {
        await trx.insertInto('messages').values(rows.slice(i, i + insertChunk)).execute();
      }
    });
    return imported;
  }

  async close(): Promise<void> {
    this.#closed ??= this.#db.destroy();
    return this.#closed;
  }

  // --- helpers -------------------------------------------------------------

  #conversationRow(conversation: ConversationRecord): Insertable<ConversationsTable> {
    return {
      id: conversation.id,
      title: conversation.title,
      model: conversation.model,
      system_prompt: conversation.systemPrompt,
      settings: JSON.stringify(conversation.settings),
      active_leaf_id: conversation.activeLeafId,
      created_at: conversation.createdAt,
      updated_at: conversation.updatedAt,
    };
  }

  async #messagesOf(db: QueryRunner, conversationId: string): Promise<MessageRecord[]> {
    const { rows } = await db.executeQuery(this.#turn.messagesOf({ conversationId }));
    return rows.map(toMessage);
  }

  /**
   * Checks, inside a write transaction, that the conversation exists; on
   * PostgreSQL this also locks its row until the transaction ends, so that
   * concurrent writers to one conversation go one after the other.
   */
  async #requireConversation(trx: QueryRunner, id: string): Promise<void> {
    if ((await first(trx, this.#turn.lockConversation({ id }))) === undefined) throw notFound('conversation', id, 'conversationId');
  }

  /** Adds a message in one transaction with the conversation's `active_leaf_id` and `updated_at`. */
  async #addMessage(conversationId: string, parentId: string | null, build: (id: string, time: number) => MessageRecord): Promise<MessageRecord> {
    checkString(conversationId, 'conversationId');
    if (parentId !== null) checkString(parentId, 'parentId');
    return this.#transaction(async (trx) => {
      // PostgreSQL: lock the conversation before reading the clock, so that its messages' times
      // follow the order they are added in. SQLite's BEGIN IMMEDIATE has already locked everything,
      // and the UPDATE below finds out whether the conversation exists.
      if (this.dialect === 'postgres') await this.#requireConversation(trx, conversationId);
      const time = now();
      const message = build(uuidv7(), time);
      const added = await affected(trx, this.#turn.messageAdded({ id: conversationId, leaf: message.id, time }));
      if (added === 0n) throw notFound('conversation', conversationId, 'conversationId');
      if (parentId !== null) {
        // A throw here rolls the UPDATE above back.
        const parent = await first(trx, this.#turn.messageConversation({ id: parentId }));
        if (parent === undefined || parent.conversation_id !== conversationId) throw notFound('message', parentId, 'parentId', ` in conversation ${conversationId}`);
      }
      await trx.executeQuery(this.#turn.insertMessage(messageRow(message, message.status === 'streaming' ? this.#instanceId : null)));
      return message;
    });
  }
}

function notFound(what: 'conversation' | 'message', id: string, param?: string, where = ''): ParlanceError {
  return new ParlanceError('not_found', `No ${what} ${id}${where}.`, param === undefined ? {} : { param });
}
