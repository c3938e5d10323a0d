/**
 * The conversation store contract: the only thing the rest of Parlance knows
 * about where conversations are kept.
 *
 * One implementation exists (`store/kysely/`, SQL through Kysely) with two
 * dialects: SQLite, a file in the data directory and the zero-set-up default,
 * and PostgreSQL, so that several Parlance replicas share history. The
 * conformance suite (`test/conformance/store.contract.test.ts`) runs against
 * both; anything written here is checked there.
 *
 * ## Records
 *
 * A {@link ConversationRecord} owns a tree of {@link MessageRecord}s. Every
 * message names its `parentId` (`null` for a root), so edits and regenerations
 * are siblings rather than overwrites:
 *
 * - *regenerate*: a new assistant message whose parent is the same user message;
 * - *edit*: a new user message whose parent is the edited message's parent
 *   (`null` when the first message is edited, which makes a second root).
 *
 * The conversation stores which branch is shown as `activeLeafId`: the active
 * branch is the path from a root down to that message, found by following
 * `parentId` upwards. Adding a message makes it the active leaf;
 * {@link ConversationStore.selectBranch} switches branches.
 *
 * ## Conventions
 *
 * - **Ids** are UUIDv7 strings (RFC 9562): random, unique across replicas, and
 *   sortable by creation time. Callers treat them as opaque.
 * - **Times** are integer milliseconds since the Unix epoch (UTC), in records
 *   and in the database alike. A store's clock never goes backwards and never
 *   repeats a value, so two writes through one store are always ordered.
 * - **Absent values** in records are `null`, never missing properties, so a
 *   record serialises to JSON with a fixed shape.
 * - **Not found**: methods that *read* return `undefined` when the thing does
 *   not exist; methods that *write* to something that does not exist throw
 *   `ParlanceError('not_found')` (see `src/errors.ts`). Invalid input throws
 *   `ParlanceError('invalid_request')` with `param` naming the field.
 *   {@link ConversationStore.updateStreamingText} is the one exception: it is
 *   the hot path and answers `false` instead of throwing.
 * - **Atomicity**: every method is all-or-nothing. A method that changes
 *   several rows does so in one transaction; when it throws, nothing it did
 *   remains.
 *
 * ## Lifetime
 *
 * The composition root opens a store, calls {@link ConversationStore.migrate}
 * and then {@link ConversationStore.recoverInterrupted} (in that order, before
 * serving), and calls {@link ConversationStore.close} last on shutdown, after
 * open streams have been closed.
 */

/** Who wrote a message. The conversation's system prompt is not a message; see {@link ConversationRecord.systemPrompt}. */
export type MessageRole = 'system' | 'user' | 'assistant';

/**
 * Where a message is in its life. User and system messages are always
 * `complete`. An assistant reply starts `streaming`, and ends as exactly one of:
 *
 * - `complete`: the model finished (stop sequence, end of text or length limit);
 * - `stopped`: the user pressed stop or went away; `content` keeps what was produced;
 * - `failed`: the engine failed, or the server died mid-stream (see
 *   {@link ConversationStore.recoverInterrupted}); `content` keeps the partial
 *   text and `error` says why.
 */
export type MessageStatus = 'streaming' | 'complete' | 'stopped' | 'failed';

/** The statuses a streaming message can end in. */
export type FinalMessageStatus = Exclude<MessageStatus, 'streaming'>;

/**
 * The sampling settings a conversation was created with, applied to each of
 * its generations unless a request overrides them. Absent fields mean "the
 * engine's default". Stored as JSON text.
 */
export interface ConversationSettings {
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly topK?: number;
  readonly minP?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  readonly repeatPenalty?: number;
  readonly seed?: number;
  readonly stop?: readonly string[];
}

export interface ConversationRecord {
  readonly id: string;
  readonly title: string;
  /** The model the conversation uses by default; `null`: the server's default model. */
  readonly model: string | null;
  /** Sent before the first message of every generation; `null`: none. */
  readonly systemPrompt: string | null;
  readonly settings: ConversationSettings;
  /** The last message of the active branch; `null` while the conversation has no messages. */
  readonly activeLeafId: string | null;
  readonly createdAt: number;
  /**
   * The last change to the conversation: its creation, an update through
   * {@link ConversationStore.updateConversation}, a message added, or a
   * streaming message finished. Text updates while streaming and branch
   * selection do not count. Conversations are listed by it, newest first.
   */
  readonly updatedAt: number;
}

/** Token counts of one generation, as the engine reported them. */
export interface MessageUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** How long one generation took, in milliseconds from its admission by the engine. */
export interface MessageTimings {
  /** Until the first text arrived; `null` when no text was produced. */
  readonly firstTokenMs: number | null;
  /** Until the generation ended. */
  readonly totalMs: number;
}

/** Why a message failed. */
export interface MessageError {
  /** An error code, normally one of `src/errors.ts`'s `ErrorCode`s; kept as a plain string so old records always load. */
  readonly code: string;
  readonly message: string;
}

/** A tool call an assistant message made, and the tool's result once there is one. */
export interface MessageToolCall {
  readonly id: string;
  readonly name: string;
  /** The arguments as the model wrote them (JSON text, normally). */
  readonly arguments: string;
  /** What the tool returned; `null` until a result is recorded. */
  readonly result: string | null;
}

/**
 * A file sent with a user message: a text file or a document's text, or an image as a `data:` URL. Stored as
 * JSON with the message (migration 0008), exported and imported with it.
 */
export type MessageAttachment =
  | { readonly type: 'text'; readonly name: string; readonly mediaType: string; readonly text: string }
  | { readonly type: 'image'; readonly name: string; readonly mediaType: string; readonly url: string };

export interface MessageRecord {
  readonly id: string;
  readonly conversationId: string;
  /** The message this one answers or follows; `null` for a root. Always in the same conversation. */
  readonly parentId: string | null;
  readonly role: MessageRole;
  /** The text; for a `streaming` message, the text as of its last update. */
  readonly content: string;
  readonly status: MessageStatus;
  /** The model that wrote an assistant message; `null` for user and system messages. */
  readonly model: string | null;
  /** Set when an assistant message ends, if the engine reported usage. */
  readonly usage: MessageUsage | null;
  /** Set when an assistant message ends, if timings were measured. */
  readonly timings: MessageTimings | null;
  /** Set when, and only when, `status` is `failed`. */
  readonly error: MessageError | null;
  /** The model's reasoning before (or between) its answer; `''` when it gave none. Saved as it grows, like `content`. */
  readonly reasoning: string;
  /** The tool calls of an assistant message, in order, with their results; empty when none. */
  readonly toolCalls: readonly MessageToolCall[];
  /** Why generation ended, as the engine said (`stop`, `length`, `tool_calls`, …); `null` while streaming or when unknown. */
  readonly finishReason: string | null;
  /** The files of a user message, in order; empty when none. */
  readonly attachments: readonly MessageAttachment[];
  readonly createdAt: number;
  /** The last write to the message, text updates while streaming included. */
  readonly updatedAt: number;
}

export interface NewConversation {
  /** Default: `"New conversation"`. */
  readonly title?: string;
  readonly model?: string | null;
  readonly systemPrompt?: string | null;
  readonly settings?: ConversationSettings;
}

/** The fields to change; absent fields are left as they are. */
export interface ConversationPatch {
  readonly title?: string;
  readonly model?: string | null;
  readonly systemPrompt?: string | null;
  /** Replaces the settings as a whole. */
  readonly settings?: ConversationSettings;
}

export interface ListConversationsOptions {
  /** Page size, 1 to 100. Default: 20. */
  readonly limit?: number;
  /** The `nextCursor` of the previous page; absent for the first page. */
  readonly cursor?: string;
}

export interface ConversationPage {
  /** Newest first: by `updatedAt` descending, then by `id` descending. */
  readonly conversations: readonly ConversationRecord[];
  /** Pass as `cursor` to get the next page; `null` on the last page. Opaque. */
  readonly nextCursor: string | null;
}

/** A complete message to add: a user's turn, or a reply that was not streamed. */
export interface NewMessage {
  readonly conversationId: string;
  /** `null` starts a new root (editing the first message). */
  readonly parentId: string | null;
  readonly role: MessageRole;
  readonly content: string;
  /** For assistant messages: the model that wrote it. */
  readonly model?: string | null;
  /** For assistant messages. */
  readonly usage?: MessageUsage | null;
  /** For assistant messages. */
  readonly timings?: MessageTimings | null;
}

/** An assistant reply about to be generated. It starts `streaming` with empty text. */
export interface NewStreamingMessage {
  readonly conversationId: string;
  /** The message it answers, normally a user message. */
  readonly parentId: string;
  readonly model: string;
}

/** Where an exchange goes and who answers it: given, or decided from the conversation (see {@link NewExchange}). */
export interface ExchangeChoice {
  /** The message the user's message follows; `null` starts a new root. */
  readonly parentId: string | null;
  /** The model that will write the reply. */
  readonly model: string;
  /** Also renames the conversation, in the same transaction (its first exchange). */
  readonly title?: string;
}

/**
 * A user's message and the reply to it, about to be generated: what
 * {@link ConversationStore.startExchange} adds in one transaction.
 */
export type NewExchange = {
  readonly conversationId: string;
  /** The user's text. */
  readonly content: string;
  /** Files sent with it. Absent: none. */
  readonly attachments?: readonly MessageAttachment[];
} & (
  | ExchangeChoice
  | {
      /**
       * Called inside the transaction, before anything is written, with the
       * conversation as it is then: decides the exchange from it (the active
       * leaf as parent, the conversation's model, a first exchange's title),
       * so that a turn needs no separate read of the conversation. A throw
       * writes nothing and is what `startExchange` throws.
       */
      readonly decide: (conversation: ConversationRecord) => ExchangeChoice;
    }
);

/** What {@link ConversationStore.startExchange} added. */
export interface StartedExchange {
  /** The user's message, `complete`. */
  readonly userMessage: MessageRecord;
  /** The reply, `streaming` with empty text; the conversation's active leaf. */
  readonly assistantMessage: MessageRecord;
  /** The branch the reply answers, root first, ending with `userMessage`: the history to send to a model. */
  readonly path: readonly MessageRecord[];
  /** With `decide`: the conversation as it was handed to `decide` (before the exchange). */
  readonly conversation?: ConversationRecord;
}

/** A reply's text so far, for {@link ConversationStore.updateStreamingTexts}. */
export interface StreamingText {
  readonly messageId: string;
  /** The whole text so far. */
  readonly content: string;
  /** The whole reasoning so far; absent leaves it as it is. */
  readonly reasoning?: string;
  /** Every tool call so far; absent leaves them as they are. */
  readonly toolCalls?: readonly MessageToolCall[];
}

/** A finished reply and its conversation as the same transaction left it. */
export interface FinishedReply {
  readonly message: MessageRecord;
  readonly conversation: ConversationRecord;
}

/**
 * How a streaming message ended. `content` is the final text; absent, the text
 * of the last {@link ConversationStore.updateStreamingText} stays.
 */
export type MessageOutcome =
  | (OutcomeParts & {
      readonly status: 'complete' | 'stopped';
    })
  | (OutcomeParts & {
      readonly status: 'failed';
      readonly error: MessageError;
    });

/** What a finished message carries besides its status; absent text, reasoning or tool calls stay as last saved. */
export interface OutcomeParts {
  readonly content?: string;
  readonly reasoning?: string;
  readonly toolCalls?: readonly MessageToolCall[];
  readonly finishReason?: string | null;
  readonly usage?: MessageUsage | null;
  readonly timings?: MessageTimings | null;
}

/** All the messages of a conversation, with its active branch. */
export interface ConversationTree {
  readonly conversation: ConversationRecord;
  /** Every message, oldest first (by `createdAt`, then `id`). Children of a message are its `parentId` back-references. */
  readonly messages: readonly MessageRecord[];
  /** The ids of the active branch, from its root to `conversation.activeLeafId`. Empty when there are no messages. */
  readonly activePath: readonly string[];
}

/**
 * A conversation and all its messages, as a self-describing JSON value: what
 * {@link ConversationStore.exportConversation} returns and
 * {@link ConversationStore.importConversation} takes back.
 */
export interface ConversationExport {
  readonly format: 'parlance.conversation';
  readonly version: 1;
  readonly exportedAt: number;
  readonly conversation: ConversationRecord;
  /** Oldest first; every parent comes before its children. */
  readonly messages: readonly MessageRecord[];
}

export interface ImportOptions {
  /**
   * Keep the ids of the export instead of giving the conversation and its
   * messages new ones. Default `false`: an export can then be imported any
   * number of times, next to the original. With `true`, an id already in the
   * store makes the whole import fail (restoring a deleted conversation is the
   * use). Timestamps, the tree and the active branch are kept either way.
   */
  readonly keepIds?: boolean;
}

/** What {@link ConversationStore.migrate} did. */
export interface MigrationReport {
  /** The migrations applied by this call, in order; empty when the schema was up to date. */
  readonly applied: readonly string[];
  /** The latest migration now applied. */
  readonly current: string | null;
}

export interface RecoverOptions {
  /**
   * Which `streaming` messages to fail:
   *
   * - `all` (default): every one. Right for a single server, SQLite always: at
   *   start nothing can be streaming, so any such message was interrupted.
   * - `instance`: only those started by a store with this store's instance id
   *   (`openStore`'s `instanceId`; the host name by default), that is by this
   *   replica's previous life. For replicas sharing PostgreSQL, so that one
   *   replica's restart does not fail another's live streams.
   * - `expired`: those whose lease ({@link ConversationStore.renewLeases}) ran
   *   out: the replica generating them stopped renewing it (it was killed, or
   *   lost the database). Any replica may run this at any time, as often as it
   *   likes; with PostgreSQL each replica runs it every few seconds. Replies
   *   stored before leases existed have none; `staleAfterMs` still covers them.
   */
  readonly scope?: 'all' | 'instance' | 'expired';
  /**
   * With scope `instance`: also fail messages of any instance whose text has
   * not changed for this many milliseconds (orphans of a replica that never
   * came back). Absent: no such sweep.
   */
  readonly staleAfterMs?: number;
}

/** What {@link ConversationStore.recoverInterrupted} did. */
export interface RecoveryReport {
  /** The ids of the messages it marked `failed`. */
  readonly failed: readonly string[];
}

/** The `error` that {@link ConversationStore.recoverInterrupted} writes on the messages it fails. */
export const interruptedError: MessageError = {
  code: 'server_stopped',
  message: 'The server stopped while this reply was being generated.',
};

/**
 * A stored OpenAI Responses API response: what `GET /v1/responses/{id}` answers and what
 * `previous_response_id` continues. The store keeps the JSON as given; the dialect owns its shape.
 */
export interface ResponseRecord {
  /** The dialect's id (`resp_…`), unique. */
  readonly id: string;
  readonly model: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** The response this one continued; `null` when none. */
  readonly previousResponseId: string | null;
  /** Every input item the response answered, those of earlier responses in its chain included. */
  readonly input: readonly unknown[];
  /** The response object as the API returns it. */
  readonly body: Readonly<Record<string, unknown>>;
}

export interface ResponseStore {
  /** Adds a response, or replaces the one with its id. */
  saveResponse(record: ResponseRecord): Promise<void>;
  getResponse(id: string): Promise<ResponseRecord | undefined>;
  /** True when there was such a response (and now is not). */
  deleteResponse(id: string): Promise<boolean>;
}

/** The most characters {@link ConversationStore.searchMessages} takes as a query. */
export const searchQueryMaxLength = 200;
/** The most hits {@link ConversationStore.searchMessages} answers per page. */
export const searchLimitMax = 50;

export interface SearchOptions {
  /**
   * Words to find, 1 to {@link searchQueryMaxLength} characters. Only its
   * letters and digits count: every word must occur in a message (any case),
   * the last one as a prefix, so that a query typed so far already finds. Any
   * other character (quotes, `*`, `-`, `:`, brackets) only separates words; it
   * is never query syntax. A query without a word finds nothing.
   */
  readonly query: string;
  /** Page size, 1 to {@link searchLimitMax}. Default: 20. */
  readonly limit?: number;
  /** The `nextCursor` of the previous page; absent for the first page. */
  readonly cursor?: string;
}

/** A short piece of a message around its match, and where the matched words are in it. */
export interface SearchSnippet {
  /** Plain text (never markup); cut text at either end is marked with `…`. */
  readonly text: string;
  /** `[start, end)` UTF-16 offsets into `text` of each matched word, in order and not overlapping. */
  readonly highlights: readonly (readonly [number, number])[];
}

/** A message that matched a search. */
export interface SearchHit {
  readonly conversationId: string;
  readonly conversationTitle: string;
  readonly messageId: string;
  readonly role: MessageRole;
  readonly createdAt: number;
  readonly snippet: SearchSnippet;
}

export interface SearchPage {
  /** Newest message first: by `createdAt` descending, then by `messageId` descending. */
  readonly hits: readonly SearchHit[];
  /** Pass as `cursor` to get the next page; `null` on the last page. Opaque. */
  readonly nextCursor: string | null;
}

/** A resumable stream's durable header: who may resume it, how many events are stored, and whether it ended. */
export interface StoredStream {
  /** The API key's name that started it; null when no keys are set. */
  readonly owner: string | null;
  readonly eventCount: number;
  /** Epoch ms of its start; a stream never ended is abandoned once the deadline is long past this. */
  readonly createdAt: number;
  /** Epoch ms; null while it is live. */
  readonly endedAt: number | null;
}

/**
 * The durable event logs of resumable `/v1` streams, so that any replica can resume a stream another one
 * generates. The generating replica appends in batches; the others read and poll.
 */
export interface StreamLogStore {
  createStream(id: string, owner: string | null, createdAt: number): Promise<void>;
  /** Stores events `firstSeq`, `firstSeq + 1`, … (ids as sent, 1-based) and, with `endedAt`, marks the stream ended. */
  appendEvents(id: string, firstSeq: number, events: readonly string[], endedAt: number | null): Promise<void>;
  getStream(id: string): Promise<StoredStream | undefined>;
  /** Up to `limit` events after id `afterSeq`, in order. */
  readEvents(id: string, afterSeq: number, limit: number): Promise<string[]>;
  /** Removes the streams that ended before `endedBefore`, with their events. */
  deleteEnded(endedBefore: number): Promise<void>;
}

/** A named system prompt plus settings, to start conversations from. */
export interface PresetRecord {
  readonly id: string;
  /** Unique among presets (exactly, case included). */
  readonly name: string;
  readonly systemPrompt: string | null;
  readonly settings: ConversationSettings;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface NewPreset {
  readonly name: string;
  readonly systemPrompt?: string | null;
  readonly settings?: ConversationSettings;
}

/** The fields to change; absent fields are left as they are; `settings` replaces them as a whole. */
export interface PresetPatch {
  readonly name?: string;
  readonly systemPrompt?: string | null;
  readonly settings?: ConversationSettings;
}

/** The most presets {@link SettingsStore.createPreset} keeps (the list is read whole). */
export const presetsMax = 200;

/**
 * Settings that belong to the server rather than to one conversation: the global defaults of every
 * conversation reply, and named presets. Shared by every replica of a store, like conversations.
 */
export interface SettingsStore {
  /** The global default settings; `{}` until some are set. */
  getDefaults(): Promise<ConversationSettings>;
  /** Replaces the defaults as a whole; answers them as stored. `invalid_request` (param `defaults`) for settings out of range. */
  setDefaults(defaults: ConversationSettings): Promise<ConversationSettings>;
  /** Every preset, by name. */
  listPresets(): Promise<readonly PresetRecord[]>;
  getPreset(id: string): Promise<PresetRecord | undefined>;
  /**
   * Throws `invalid_request` with param `name` when a preset has that name already, or when there are
   * {@link presetsMax} presets; param `settings` for settings out of range. Nothing is written then.
   */
  createPreset(input: NewPreset): Promise<PresetRecord>;
  /** Renames or changes a preset; `not_found` when there is none, `invalid_request` (param `name`) for a name taken. */
  updatePreset(id: string, patch: PresetPatch): Promise<PresetRecord>;
  /** `not_found` when there is no such preset. Conversations started from it keep what it gave them. */
  deletePreset(id: string): Promise<void>;
}

export interface ConversationStore {
  /** `sqlite` or `postgres`, for logs and `/health`. */
  readonly dialect: string;

  /** Global defaults and presets, in the same database. */
  readonly settings: SettingsStore;

  /** The OpenAI Responses API's stored responses, in the same database. */
  readonly responses: ResponseStore;

  /** Resumable streams' event logs, in the same database. */
  readonly streamLogs: StreamLogStore;

  /**
   * Brings the schema up to date by applying the pending migrations, in
   * order; idempotent, and safe to run from several replicas at once. Call it
   * once at start, before anything else.
   */
  migrate(): Promise<MigrationReport>;

  /**
   * Crash recovery, called once at start after {@link migrate}: marks
   * interrupted `streaming` messages `failed` with {@link interruptedError},
   * keeping their partial text. Without it they would stay `streaming` forever.
   */
  recoverInterrupted(options?: RecoverOptions): Promise<RecoveryReport>;

  createConversation(input?: NewConversation): Promise<ConversationRecord>;
  getConversation(id: string): Promise<ConversationRecord | undefined>;
  /** Newest first; see {@link ConversationRecord.updatedAt}. */
  listConversations(options?: ListConversationsOptions): Promise<ConversationPage>;
  /** Rename, change the model, system prompt or settings. Moves `updatedAt`. */
  updateConversation(id: string, patch: ConversationPatch): Promise<ConversationRecord>;
  /** Deletes the conversation and all its messages. */
  deleteConversation(id: string): Promise<void>;

  getMessage(id: string): Promise<MessageRecord | undefined>;
  /** The conversation, all its messages and its active branch. */
  getTree(conversationId: string): Promise<ConversationTree | undefined>;
  /** The messages of the active branch, root first: the history to send to a model. */
  getActivePath(conversationId: string): Promise<readonly MessageRecord[] | undefined>;
  /**
   * Makes the branch through `messageId` the active one. The new active leaf
   * is found by going down from `messageId`, taking the newest child at each
   * step; so selecting a leaf selects exactly it. Returns the new active path.
   */
  selectBranch(conversationId: string, messageId: string): Promise<readonly MessageRecord[]>;

  /** Adds a complete message (status `complete`) and makes it the active leaf. */
  appendMessage(input: NewMessage): Promise<MessageRecord>;
  /** Adds an assistant message with status `streaming` and empty text, and makes it the active leaf. */
  startAssistantMessage(input: NewStreamingMessage): Promise<MessageRecord>;
  /**
   * Makes a finished assistant message `streaming` again, to generate more of
   * it ("Continue" after a reply cut at max tokens): its text, reasoning, tool
   * calls and usage stay; its error and finish reason are cleared; this
   * instance streams it (crash recovery as for any streaming reply). Throws
   * `not_found` (param `messageId`), or `invalid_request` when it is not an
   * assistant message or is streaming already, writing nothing.
   */
  continueMessage(messageId: string): Promise<MessageRecord>;
  /**
   * A chat turn's writes, in one transaction: adds the user's message (as
   * {@link appendMessage} would) and, answering it, a `streaming` assistant
   * message (as {@link startAssistantMessage} would), which becomes the active
   * leaf; renames the conversation when `title` is given. Returns both and the
   * branch down to the user's message. Throws `not_found` (param
   * `conversationId` or `parentId`) writing nothing, like `appendMessage`;
   * with `decide`, a missing conversation is `not_found` without a param
   * (the conversation is the request's subject, not one of its fields).
   */
  startExchange(input: NewExchange): Promise<StartedExchange>;
  /**
   * Replaces the text of a `streaming` message with `content` (the whole text
   * so far, not a delta, so a lost or repeated call does no harm). One cheap
   * UPDATE; the core calls it at a bounded rate while a reply streams.
   * Returns `false`, without throwing, when there is no such message or it is
   * no longer `streaming` (recovered by another replica, say).
   */
  updateStreamingText(messageId: string, content: string): Promise<boolean>;
  /**
   * {@link updateStreamingText} for several replies at once, in one
   * transaction (one commit for every reply streaming in this process).
   * Returns the ids of those that are not `streaming` any more, or missing.
   */
  updateStreamingTexts(texts: readonly StreamingText[]): Promise<readonly string[]>;
  /**
   * Renews the lease of every `streaming` reply this store instance started
   * (`openStore`'s `instanceId`), to `leaseMs` from now: the heartbeat that
   * tells other replicas the reply is still being generated (see
   * {@link RecoverOptions.scope} `expired`). Returns the ids of those replies
   * whose stop another replica asked for ({@link requestStop}): the caller
   * stops generating them and finishes them as usual, so that the text
   * streamed, the final event and the store agree.
   */
  renewLeases(): Promise<readonly string[]>;
  /**
   * Asks the replica generating a `streaming` reply to stop it; it learns of
   * it at its next {@link renewLeases}. Returns `false` when the message is
   * missing or no longer `streaming`.
   */
  requestStop(messageId: string): Promise<boolean>;
  /**
   * Ends a `streaming` message as `complete`, `stopped` or `failed`. Throws
   * `not_found` when there is no such message and `invalid_request` when it is
   * not streaming any more.
   */
  finishMessage(messageId: string, outcome: MessageOutcome): Promise<MessageRecord>;
  /** {@link finishMessage}, also answering the conversation as the finish left it (its `updatedAt` moved). */
  finishReply(messageId: string, outcome: MessageOutcome): Promise<FinishedReply>;

  /**
   * Full-text search over the text of every message, on every branch. The
   * first 100,000 characters of a message are indexed. A reply still
   * streaming is found by its saved text up to a lag of at most 2,000
   * characters (it is re-indexed in steps, see migration 0005), and by all of
   * it once it ends. Throws `invalid_request` (param `query`, `limit` or
   * `cursor`) for input out of bounds.
   */
  searchMessages(options: SearchOptions): Promise<SearchPage>;

  /** All the records of a conversation; `undefined` when there is no such conversation. */
  exportConversation(id: string): Promise<ConversationExport | undefined>;
  /**
   * Adds a conversation from an export, in one transaction: on any error,
   * `invalid_request` for malformed data included, nothing is written.
   * Messages still `streaming` in the export are imported as `failed` with
   * {@link interruptedError}.
   */
  importConversation(data: unknown, options?: ImportOptions): Promise<ConversationRecord>;

  /** Closes the database connections. Call last; the store is unusable afterwards. */
  close(): Promise<void>;
}
