/**
 * The one SQL implementation of the conversation store, on Kysely. The SQL it
 * builds is the portable subset that SQLite and PostgreSQL both run; the only
 * dialect switch is the row lock (`FOR UPDATE`) that PostgreSQL needs and
 * SQLite, whose writers are serialised by `BEGIN IMMEDIATE`, has no syntax for
 * (so SQLite skips that query). The statements of a chat turn are compiled
 * once (`turnQueries`). `dialects.ts` opens the database; see `../contract.ts`
 * for the behaviour, and `docs/decisions/store.md` for the hot path.
 */
import { Migrator, sql, type Kysely } from 'kysely';
import { ParlanceError } from '../../errors.js';
import {
  interruptedError,
  type ConversationPage,
  type ConversationPatch,
  type ConversationRecord,
  type ConversationExport,
  type ConversationStore,
  type ConversationTree,
  type FinishedReply,
  type NewExchange,
  type StartedExchange,
  type ExchangeChoice,
  type StreamingText,
  type ImportOptions,
  type ListConversationsOptions,
  type MessageOutcome,
  type MessageRecord,
  type MigrationReport,
  type NewConversation,
  type NewMessage,
  type NewStreamingMessage,
  type RecoverOptions,
  type RecoveryReport,
  type SearchOptions,
  type SearchPage,
} from '../contract.js';
import { BranchMemory } from './branch-memory.js';
import { decodeCursor, encodeCursor } from './cursors.js';
import { now, uuidv7, wallNow } from './ids.js';
import { prepareImport } from './import.js';
import { migrationProvider } from './migrations/index.js';
import { conversationRow, errorColumns, messageRow, noParts, streamingReply, timingsColumns, toConversation, toMessage, toolCallsColumn, usageColumns } from './rows.js';
import type { ConversationRow, StoreDatabase } from './schema.js';
import type { DirectSqlite, QueryRunner } from './sqlite-dialect.js';
import { newestLeafUnder, parentsFirst, pathTo } from './tree.js';
import { affected, first, turnQueries } from './turn-queries.js';
import { attachmentsSchema, checkChoice, checkSettings, checkString, checkWith, errorSchema, finalStatusSchema, invalid, notFound, roleSchema, timingsSchema, toolCallsSchema, usageSchema } from './validation.js';
import { KyselyResponseStore, type ResponsesDatabase } from './responses.js';
import { searchMessages } from './search.js';
import { KyselyStreamLogStore, type StreamLogDatabase } from './stream-log.js';
import { KyselySettingsStore, type SettingsDatabase } from './settings.js';

export { uuidv7 } from './ids.js';
export type { StoreDatabase } from './schema.js';

// ---------------------------------------------------------------------------
// The store

export interface KyselyStoreOptions {
  readonly dialect: 'sqlite' | 'postgres';
  /** Recorded on streaming messages; see `RecoverOptions.scope`. */
  readonly instanceId: string;
  /** How long a streaming reply's lease lasts from its start or last renewal (see `renewLeases`). Default: 15 s. */
  readonly leaseMs?: number;
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
  readonly streamLogs: KyselyStreamLogStore;
  readonly settings: KyselySettingsStore;
  readonly #db: Kysely<StoreDatabase>;
  readonly #instanceId: string;
  readonly #leaseMs: number;
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
    this.streamLogs = new KyselyStreamLogStore(db.withTables<StreamLogDatabase>());
    this.settings = new KyselySettingsStore(db.withTables<SettingsDatabase>());
    this.#instanceId = options.instanceId;
    this.#leaseMs = options.leaseMs ?? 15_000;
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
      .set({ status: 'failed', ...errorColumns(interruptedError), instance_id: null, lease_expires_at: null, stop_requested_at: null, updated_at: time })
      .where('status', '=', 'streaming')
      .$if(scope === 'expired', (qb) =>
        qb.where((eb) =>
          staleAfterMs === undefined
            ? eb('lease_expires_at', '<', time)
            : eb.or([eb('lease_expires_at', '<', time), eb.and([eb('lease_expires_at', 'is', null), eb('updated_at', '<', time - staleAfterMs)])]),
        ),
      )
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

  async renewLeases(): Promise<readonly string[]> {
    const rows = await this.#db
      .updateTable('messages')
      .set({ lease_expires_at: wallNow() + this.#leaseMs })
      .where('status', '=', 'streaming')
      .where('instance_id', '=', this.#instanceId)
      .returning(['id', 'stop_requested_at'])
      .execute();
    return rows.filter((row) => row.stop_requested_at !== null).map((row) => row.id);
  }

  async requestStop(messageId: string): Promise<boolean> {
    checkString(messageId, 'messageId');
    const result = await this.#db
      .updateTable('messages')
      .set({ stop_requested_at: wallNow() })
      .where('id', '=', messageId)
      .where('status', '=', 'streaming')
      .executeTakeFirst();
    return (result.numUpdatedRows ?? 0n) > 0n;
  }

  /** A new streaming reply's lease: this instance's, for `leaseMs` from `time`. */
  #lease(time: number): { instanceId: string; expiresAt: number } {
    return { instanceId: this.#instanceId, expiresAt: time + this.#leaseMs };
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
      ...noParts,
      usage,
      timings,
      createdAt: time,
      updatedAt: time,
    }));
  }

  async continueMessage(messageId: string): Promise<MessageRecord> {
    checkString(messageId, 'messageId');
    const row = await this.#db
      .updateTable('messages')
      .set({ status: 'streaming', error_code: null, error_message: null, finish_reason: null, instance_id: this.#instanceId, updated_at: wallNow() })
      .where('id', '=', messageId)
      .where('role', '=', 'assistant')
      .where('status', '<>', 'streaming')
      .returningAll()
      .executeTakeFirst();
    if (row !== undefined) return toMessage(row);
    const existing = await this.getMessage(messageId);
    if (existing === undefined) throw notFound('message', messageId, 'messageId');
    throw invalid('messageId', existing.role !== 'assistant' ? 'Only a reply can be continued.' : `Message ${messageId} is streaming already.`);
  }

  async startAssistantMessage(input: NewStreamingMessage): Promise<MessageRecord> {
    const model = checkString(input.model, 'model');
    return this.#addMessage(input.conversationId, input.parentId, (id, time) => streamingReply(id, input.conversationId, input.parentId, model, time));
  }

  async updateStreamingText(messageId: string, content: string): Promise<boolean> {
    return (await affected(this.#run, this.#turn.streamingText({ id: messageId, content, reasoning: null, toolCalls: null, time: wallNow() }))) > 0n;
  }

  async updateStreamingTexts(texts: readonly StreamingText[]): Promise<readonly string[]> {
    if (texts.length === 0) return [];
    for (const text of texts) {
      checkString(text.messageId, 'messageId');
      checkString(text.content, 'content');
      if (text.reasoning !== undefined) checkString(text.reasoning, 'reasoning');
      if (text.toolCalls !== undefined) checkWith(toolCallsSchema, text.toolCalls, 'toolCalls');
    }
    // One transaction: on SQLite one commit (one WAL append) for every stream's save instead of one each;
    // on PostgreSQL one fsync. The updates are the same as updateStreamingText's.
    return this.#transaction(async (trx) => {
      const time = wallNow();
      const gone: string[] = [];
      for (const text of texts) {
        const parts = { reasoning: text.reasoning ?? null, toolCalls: text.toolCalls === undefined ? null : toolCallsColumn(text.toolCalls) };
        if ((await affected(trx, this.#turn.streamingText({ id: text.messageId, content: text.content, ...parts, time }))) === 0n) gone.push(text.messageId);
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
    const attachments = input.attachments === undefined ? [] : checkWith(attachmentsSchema, input.attachments, 'attachments');
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
        ...noParts,
        attachments,
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
      await trx.executeQuery(this.#turn.insertMessage(messageRow(assistantMessage, this.#lease(time))));
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
    const reasoning = outcome.reasoning === undefined ? null : checkString(outcome.reasoning, 'reasoning');
    const toolCalls = outcome.toolCalls === undefined ? null : toolCallsColumn(checkWith(toolCallsSchema, outcome.toolCalls, 'toolCalls'));
    const finishReason = outcome.finishReason == null ? null : checkString(outcome.finishReason, 'finishReason');
    const finished = await this.#transaction(async (trx) => {
      const time = now();
      const finish = { id: messageId, status, content, reasoning, toolCalls, finish_reason: finishReason, ...usageColumns(usage), ...timingsColumns(timings), ...errorColumns(error), time };
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

  searchMessages(options: SearchOptions): Promise<SearchPage> {
    return searchMessages(this.#db, this.dialect, options);
  }

  // --- export / import -----------------------------------------------------

  async exportConversation(id: string): Promise<ConversationExport | undefined> {
    const tree = await this.getTree(id);
    if (tree === undefined) return undefined;
    return { format: 'parlance.conversation', version: 1, exportedAt: now(), conversation: tree.conversation, messages: parentsFirst(tree.messages) };
  }

  async importConversation(data: unknown, options: ImportOptions = {}): Promise<ConversationRecord> {
    const { conversation, rows } = prepareImport(data, options);
    await this.#db.transaction().execute(async (trx) => {
      await trx.insertInto('conversations').values(conversationRow(conversation)).execute();
      for (let i = 0; i < rows.length; i += insertChunk) {
        await trx.insertInto('messages').values(rows.slice(i, i + insertChunk)).execute();
      }
    });
    return conversation;
  }

  async close(): Promise<void> {
    this.#closed ??= this.#db.destroy();
    return this.#closed;
  }

  // --- helpers -------------------------------------------------------------

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
      await trx.executeQuery(this.#turn.insertMessage(messageRow(message, message.status === 'streaming' ? this.#lease(time) : null)));
      return message;
    });
  }
}

