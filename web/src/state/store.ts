import { useSyncExternalStore } from 'react';
import type {
  ConversationPatchBody,
  ConversationRecord,
  ConversationSettings,
  ConversationTree,
  MessageAttachment,
  MessageRecord,
  ReplyDone,
} from '../../../src/protocol/conversations.js';
import type { ModelList } from '../../../src/protocol/parlance-models.js';
import { toolCallsSize } from '../../../src/protocol/reply-cursor.js';
import * as api from '../api/conversations.js';
import { settingsBody } from '../api/settings.js';
import { ApiError, checkApiKey, isAbort, setApiKey, whenUnauthorized, whenUnreachable } from '../api/http.js';
import { followReply, startReply, type ReplyCallbacks } from '../api/reply-stream.js';
import { getModelList } from '../api/models.js';
import { getHealth, type Health, type Notice } from '../api/server.js';
import { LiveReplies } from './live.js';
import { pathTo, upsertMessages } from './tree.js';

/** What the next new conversation is created with: the settings dialog edits it before the first message. */
export interface SettingsDraft {
  readonly model: string | null;
  readonly systemPrompt: string;
  /** Its own settings (over the server's global defaults). */
  readonly settings: ConversationSettings;
}

/** A turn sent but not yet acknowledged by the server's `start` event (shown at once, optimistically). */
export interface PendingTurn {
  readonly conversationId: string;
  /** The user's text; null for a regeneration. */
  readonly content: string | null;
  /** What the new turn follows: undefined for the active leaf, else a message id (null: a new root). */
  readonly parentId: string | null | undefined;
}

/** A send the server refused or could not receive, with the way to try again. */
export interface Failure {
  readonly conversationId: string | null;
  readonly message: string;
  /** Text the person typed that was not saved: it goes back into the composer. */
  readonly restore: string | null;
  readonly retry: () => void;
}

export interface Toast {
  readonly id: number;
  readonly message: string;
  readonly action?: { readonly label: string; readonly run: () => void };
}

export interface AppState {
  readonly conversations: readonly ConversationRecord[];
  readonly nextCursor: string | null;
  readonly listState: 'loading' | 'ready' | 'error';
  readonly listError: string | null;
  /** Conversations deleted but still inside their undo window. */
  readonly hidden: ReadonlySet<string>;
  readonly currentId: string | null;
  readonly tree: ConversationTree | null;
  readonly treeState: 'idle' | 'loading' | 'ready' | 'error' | 'missing';
  readonly treeError: string | null;
  readonly pending: PendingTurn | null;
  readonly failure: Failure | null;
  /** Assistant messages this tab is streaming. */
  readonly streaming: ReadonlySet<string>;
  /** Streams that lost their connection for good (a retry button is shown). */
  readonly lost: ReadonlyMap<string, string>;
  readonly models: readonly string[];
  /** What the server says of each model (capabilities, context length) and of its limits; null until loaded. */
  readonly modelList: ModelList | null;
  readonly notices: readonly Notice[];
  /** Settings for the next new conversation. */
  readonly draft: SettingsDraft;
  readonly toasts: readonly Toast[];
  /** Text to put back into the composer (an unsent message the person chose to edit). */
  readonly composerRestore: string | null;
  /** The key dialog: 'needed' when the server answered 401 (it cannot be dismissed), 'change' when the person opened it. */
  readonly keyDialog: 'needed' | 'change' | null;
  /** Why the key typed in the dialog was not taken. */
  readonly keyError: string | null;
  /** Whether the server answers: 'down' from a failed request or a dropped reply until /health answers again. */
  readonly connection: 'up' | 'down';
}

const UNDO_MS = 6000;
/** How stale the list may be before a tab coming back into view asks for it again. */
const LIST_REFRESH_MS = 30_000;

/** What tabs of the page tell each other. */
type TabMessage = { readonly type: 'conversation'; readonly record: ConversationRecord } | { readonly type: 'deleted'; readonly id: string };
/** How often the page asks whether a loading server is ready. */
const HEALTH_POLL_MS = 2000;

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

function sortConversations(list: readonly ConversationRecord[]): ConversationRecord[] {
  return [...list].sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? 1 : -1));
}

function withSet<T>(set: ReadonlySet<T>, value: T, present: boolean): ReadonlySet<T> {
  const next = new Set(set);
  if (present) next.add(value);
  else next.delete(value);
  return next;
}

/**
 * The page's state and every action on it. Components read it through
 * `useAppState(selector)` and call methods; all network access goes through
 * `web/src/api/`.
 */
export class AppStore {
  readonly live = new LiveReplies();
  private state: AppState = {
    conversations: [],
    nextCursor: null,
    listState: 'loading',
    listError: null,
    hidden: new Set(),
    currentId: null,
    tree: null,
    treeState: 'idle',
    treeError: null,
    pending: null,
    failure: null,
    streaming: new Set(),
    lost: new Map(),
    models: [],
    modelList: null,
    notices: [],
    draft: { model: null, systemPrompt: '', settings: {} },
    toasts: [],
    composerRestore: null,
    keyDialog: null,
    keyError: null,
    connection: 'up',
  };
  private readonly listeners = new Set<() => void>();
  private loadToken = 0;
  private toastId = 0;
  private readonly pendingDeletes = new Map<string, ReturnType<typeof setTimeout>>();
  private stopRequested = false;
  private watchingConnection = false;
  /** This browser's other tabs of the page: conversations created, renamed or deleted in one show in all. */
  private readonly tabs = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('parlance-conversations');
  private listLoadedAt = 0;

  readonly getState = (): AppState => this.state;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(patch: Partial<AppState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }

  // ── start-up and navigation ────────────────────────────────────────────

  init(): void {
    whenUnauthorized(() => {
      if (this.state.keyDialog !== 'needed') this.set({ keyDialog: 'needed' });
    });
    whenUnreachable(() => void this.watchConnection());
    window.addEventListener('popstate', () => this.route());
    if (this.tabs) this.tabs.onmessage = (event: MessageEvent<TabMessage>) => this.fromOtherTab(event.data);
    // Back to this tab after a while: the list may have changed elsewhere (another browser, the API).
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && Date.now() - this.listLoadedAt > LIST_REFRESH_MS) void this.refreshList();
    });
    window.addEventListener('pagehide', () => {
      for (const id of this.pendingDeletes.keys()) api.deleteConversationOnUnload(id);
    });
    this.route();
    void this.loadList();
    void this.watchHealth();
    void this.loadModels();
  }

  /** Shows the server's notices; while it is still loading its model, asks again until it is done, then lists the models. */
  private async watchHealth(): Promise<void> {
    for (let waited = false; ; waited = true) {
      let health: Health;
      try {
        health = await getHealth();
      } catch {
        return;
      }
      this.set({ notices: health.notices });
      if (!health.loading) {
        if (waited) await this.loadModels();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_MS));
    }
  }

  /**
   * The server stopped answering: says so (the connection banner) and asks /health every
   * HEALTH_POLL_MS until it answers, then reloads what could not be loaded and reattaches replies.
   */
  async watchConnection(): Promise<void> {
    if (this.watchingConnection) return;
    this.watchingConnection = true;
    this.set({ connection: 'down' });
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_MS));
      try {
        const health = await getHealth();
        this.set({ notices: health.notices });
        break;
      } catch (error) {
        // Answered, though not with health (a 401 on a keyed server): it is up. A 503 is one shutting down.
        if (error instanceof ApiError && !error.isNetwork && error.status !== 503) break;
      }
    }
    this.watchingConnection = false;
    this.set({ connection: 'up' });
    if (this.state.listState === 'error') void this.loadList();
    if (this.state.models.length === 0) void this.loadModels();
    const tree = this.state.tree;
    if (tree) for (const record of tree.messages) if (this.state.lost.has(record.id)) this.retryLost(record);
  }

  async loadModels(): Promise<void> {
    try {
      const modelList = await getModelList();
      this.set({ models: modelList.models.map((model) => model.id), modelList });
    } catch (error) {
      // A 401 opens the key dialog, which says what to do; the list loads again once a key is taken. An
      // unreachable server has its banner, and the list loads again when it is back.
      if (error instanceof ApiError && (error.status === 401 || error.isNetwork)) return;
      this.toast('Could not load the list of models.', { label: 'Retry', run: () => void this.loadModels() });
    }
  }

  /** Reads the conversation id from the URL (`/c/:id`; `/` is a new chat). */
  private route(): void {
    const match = /^\/c\/([^/]+)\/?$/.exec(window.location.pathname);
    this.show(match?.[1] ? decodeURIComponent(match[1]) : null);
  }

  /** Goes to a conversation (or to a new chat with null), adding a history entry. */
  navigate(id: string | null, replace = false): void {
    const url = id === null ? '/' : `/c/${encodeURIComponent(id)}`;
    if (window.location.pathname !== url) {
      if (replace) window.history.replaceState(null, '', url);
      else window.history.pushState(null, '', url);
    }
    this.show(id);
  }

  private show(id: string | null): void {
    if (id === this.state.currentId && (this.state.treeState === 'ready' || this.state.treeState === 'loading')) return;
    this.loadToken++;
    if (id === null) {
      this.set({ currentId: null, tree: null, treeState: 'idle', treeError: null, failure: null, pending: null });
      document.title = 'Parlance';
      return;
    }
    this.set({ currentId: id, treeState: 'loading', treeError: null, failure: null, pending: null, tree: this.state.tree?.conversation.id === id ? this.state.tree : null });
    void this.loadTree(id);
  }

  async loadTree(id: string): Promise<void> {
    const token = ++this.loadToken;
    try {
      const tree = await api.getConversation(id);
      if (token !== this.loadToken) return;
      this.set({ tree, treeState: 'ready', treeError: null });
      document.title = `${tree.conversation.title} · Parlance`;
      for (const record of tree.messages) if (record.status === 'streaming') this.follow(record);
    } catch (error) {
      if (token !== this.loadToken) return;
      if (error instanceof ApiError && error.status === 404) this.set({ treeState: 'missing', treeError: null, tree: null });
      else this.set({ treeState: 'error', treeError: message(error) });
    }
  }

  /** Checks the API key the person typed with the server; keeps it and loads everything again with it only when it is taken. */
  async useApiKey(key: string): Promise<void> {
    this.set({ keyError: null });
    try {
      if (!(await checkApiKey(key))) {
        this.set({ keyError: 'This server did not accept that key. Check it and try again.' });
        return;
      }
    } catch (error) {
      this.set({ keyError: message(error) });
      return;
    }
    setApiKey(key);
    this.set({ keyDialog: null, keyError: null, failure: null, toasts: [] });
    this.reloadAll();
  }

  /** Removes the stored API key from this browser; a server that needs one asks again. */
  forgetApiKey(): void {
    setApiKey(null);
    this.reloadAll();
  }

  openKeyDialog(): void {
    this.set({ keyDialog: 'change', keyError: null });
  }

  closeKeyDialog(): void {
    if (this.state.keyDialog === 'change') this.set({ keyDialog: null, keyError: null });
  }

  private reloadAll(): void {
    void this.loadList();
    void this.loadModels();
    if (this.state.currentId) void this.loadTree(this.state.currentId);
  }

  // ── the conversation list ──────────────────────────────────────────────

  private fromOtherTab(message: TabMessage): void {
    if (message.type === 'conversation') this.upsertConversation(message.record, true);
    else this.set({ conversations: this.state.conversations.filter((conversation) => conversation.id !== message.id) });
  }

  /** Merges the first page of the list into what is shown (quietly: no loading state). */
  private async refreshList(): Promise<void> {
    this.listLoadedAt = Date.now();
    try {
      const page = await api.listConversations();
      const fresh = new Set(page.conversations.map((conversation) => conversation.id));
      this.set({ conversations: sortConversations([...page.conversations, ...this.state.conversations.filter((conversation) => !fresh.has(conversation.id))]) });
    } catch {
      // The next visit tries again; a failure here is not worth a message.
    }
  }

  async loadList(): Promise<void> {
    this.listLoadedAt = Date.now();
    this.set({ listState: 'loading', listError: null });
    try {
      const page = await api.listConversations();
      this.set({ conversations: sortConversations(page.conversations), nextCursor: page.nextCursor, listState: 'ready' });
    } catch (error) {
      this.set({ listState: 'error', listError: message(error) });
    }
  }

  async loadMore(): Promise<void> {
    const cursor = this.state.nextCursor;
    if (!cursor) return;
    try {
      const page = await api.listConversations(cursor);
      const known = new Set(this.state.conversations.map((conversation) => conversation.id));
      this.set({ conversations: sortConversations([...this.state.conversations, ...page.conversations.filter((c) => !known.has(c.id))]), nextCursor: page.nextCursor });
    } catch (error) {
      this.toast(`Could not load more conversations: ${message(error)}`);
    }
  }

  /** Shows a conversation as the server answered it, and tells this browser's other tabs (unless it came from one). */
  private upsertConversation(record: ConversationRecord, fromOtherTab = false): void {
    if (!fromOtherTab) this.tabs?.postMessage({ type: 'conversation', record } satisfies TabMessage);
    const known = this.state.conversations.find((conversation) => conversation.id === record.id);
    if (fromOtherTab && known && known.updatedAt > record.updatedAt) return;
    const rest = this.state.conversations.filter((conversation) => conversation.id !== record.id);
    const tree = this.state.tree?.conversation.id === record.id ? { ...this.state.tree, conversation: record } : this.state.tree;
    this.set({ conversations: sortConversations([record, ...rest]), tree });
    if (tree?.conversation.id === record.id) document.title = `${record.title} · Parlance`;
  }

  /** Imports an export file the person picked, and opens the new conversation. */
  async importFile(file: File): Promise<void> {
    let data: unknown;
    try {
      data = JSON.parse(await file.text());
    } catch {
      this.toast(`“${file.name}” is not a conversation export (not JSON).`);
      return;
    }
    try {
      const record = await api.importConversation(data);
      this.upsertConversation(record);
      this.navigate(record.id);
      this.toast(`Imported “${record.title}”.`);
    } catch (error) {
      this.toast(`Could not import “${file.name}”: ${message(error)}`);
    }
  }

  async rename(id: string, title: string): Promise<void> {
    const trimmed = title.trim();
    if (!trimmed) return;
    try {
      this.upsertConversation(await api.updateConversation(id, { title: trimmed.slice(0, 200) }));
    } catch (error) {
      this.toast(`Could not rename: ${message(error)}`);
    }
  }

  /** Hides a conversation at once and deletes it when the undo window closes (or the page is left). */
  remove(id: string): void {
    const record = this.state.conversations.find((conversation) => conversation.id === id);
    this.set({ hidden: withSet(this.state.hidden, id, true) });
    if (this.state.currentId === id) this.navigate(null);
    const timer = setTimeout(() => void this.commitDelete(id), UNDO_MS);
    this.pendingDeletes.set(id, timer);
    this.toast(`Deleted “${record?.title ?? 'conversation'}”.`, {
      label: 'Undo',
      run: () => {
        clearTimeout(timer);
        this.pendingDeletes.delete(id);
        this.set({ hidden: withSet(this.state.hidden, id, false) });
      },
    }, UNDO_MS);
  }

  private async commitDelete(id: string): Promise<void> {
    this.pendingDeletes.delete(id);
    try {
      await api.deleteConversation(id);
      this.tabs?.postMessage({ type: 'deleted', id } satisfies TabMessage);
      this.set({ conversations: this.state.conversations.filter((conversation) => conversation.id !== id), hidden: withSet(this.state.hidden, id, false) });
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.set({ conversations: this.state.conversations.filter((conversation) => conversation.id !== id) });
        return;
      }
      this.set({ hidden: withSet(this.state.hidden, id, false) });
      this.toast(`Could not delete: ${message(error)}`);
    }
  }

  // ── settings ───────────────────────────────────────────────────────────

  setDraft(draft: SettingsDraft): void {
    this.set({ draft });
  }

  /** Changes the shown conversation; throws what the server answered (the settings dialog shows it at its field). */
  async saveCurrent(patch: ConversationPatchBody): Promise<void> {
    const tree = this.state.tree;
    if (tree) this.upsertConversation(await api.updateConversation(tree.conversation.id, patch));
  }

  async updateCurrent(patch: ConversationPatchBody): Promise<boolean> {
    const tree = this.state.tree;
    if (!tree) return false;
    try {
      this.upsertConversation(await api.updateConversation(tree.conversation.id, patch));
      return true;
    } catch (error) {
      this.toast(`Could not save: ${message(error)}`);
      return false;
    }
  }

  // ── toasts ─────────────────────────────────────────────────────────────

  /** Shows a toast; one with the same text as a toast still shown replaces it (they never pile up). */
  toast(text: string, action?: Toast['action'], timeoutMs = 5000): void {
    const id = ++this.toastId;
    const others = this.state.toasts.filter((toast) => toast.message !== text);
    this.set({ toasts: [...others, { id, message: text, ...(action ? { action } : {}) }] });
    setTimeout(() => this.dismiss(id), timeoutMs);
  }

  dismiss(id: number): void {
    this.set({ toasts: this.state.toasts.filter((toast) => toast.id !== id) });
  }

  // ── replies ────────────────────────────────────────────────────────────

  /** True while the shown conversation has a reply being sent or streamed by this tab. */
  busy(state: AppState = this.state): boolean {
    const tree = state.tree;
    if (state.pending && state.pending.conversationId === state.currentId) return true;
    if (!tree) return false;
    return tree.messages.some((record) => state.streaming.has(record.id));
  }

  /** Sends a message (with the files attached to it): creates the conversation first when this is a new chat. */
  async send(content: string, attachments: readonly MessageAttachment[] = []): Promise<void> {
    const text = content.trim() === '' ? '' : content;
    if ((!text && attachments.length === 0) || this.busy()) return;
    let conversationId = this.state.currentId;
    if (conversationId === null) {
      const draft = this.state.draft;
      try {
        const record = await api.createConversation({
          ...(draft.model ? { model: draft.model } : {}),
          ...(draft.systemPrompt.trim() ? { systemPrompt: draft.systemPrompt } : {}),
          settings: settingsBody(draft.settings),
        });
        conversationId = record.id;
        this.loadToken++;
        this.set({ tree: { conversation: record, messages: [], activePath: [] }, treeState: 'ready', currentId: record.id });
        this.upsertConversation(record);
        window.history.pushState(null, '', `/c/${encodeURIComponent(record.id)}`);
      } catch (error) {
        this.set({ failure: { conversationId: null, message: `Could not start the conversation: ${message(error)}`, restore: content, retry: () => void this.send(content) } });
        return;
      }
    }
    const body = attachments.length === 0 ? { content: text } : { content: text, attachments };
    await this.run(conversationId, api.messagePath(conversationId), body, { conversationId, content: text, parentId: undefined });
  }

  /** Edits an earlier user message by sending the new text beside it: a new branch; the old one is kept. */
  async editAndResend(original: MessageRecord, content: string): Promise<void> {
    if ((!content.trim() && original.attachments.length === 0) || this.busy()) return;
    const conversationId = original.conversationId;
    // The edited message keeps its files.
    const files = original.attachments.length === 0 ? {} : { attachments: original.attachments };
    await this.run(conversationId, api.messagePath(conversationId), { content, parentId: original.parentId, ...files }, { conversationId, content, parentId: original.parentId });
  }

  /** A new reply beside `assistant` (same question): a new branch. */
  async regenerate(assistant: MessageRecord): Promise<void> {
    if (this.busy()) return;
    const conversationId = assistant.conversationId;
    await this.run(conversationId, api.regeneratePath(conversationId, assistant.id), {}, { conversationId, content: null, parentId: assistant.parentId });
  }

  /** Generates more of a reply cut at max tokens, into the same message (it shows as streaming at once). */
  async continueReply(assistant: MessageRecord): Promise<void> {
    if (this.busy()) return;
    const conversationId = assistant.conversationId;
    this.live.start(assistant.id, conversationId, { text: assistant.content, reasoning: assistant.reasoning, toolCalls: assistant.toolCalls }, performance.now(), true);
    this.set({ streaming: withSet(this.state.streaming, assistant.id, true) });
    await this.run(conversationId, api.continuePath(conversationId, assistant.id), {}, null);
    if (this.state.failure !== null) {
      this.live.end(assistant.id);
      this.set({ streaming: withSet(this.state.streaming, assistant.id, false) });
    }
  }

  async switchBranch(messageId: string): Promise<void> {
    const tree = this.state.tree;
    if (!tree) return;
    try {
      const next = await api.selectBranch(tree.conversation.id, messageId);
      if (this.state.tree?.conversation.id === next.conversation.id) this.set({ tree: next });
    } catch (error) {
      this.toast(`Could not switch versions: ${message(error)}`);
    }
  }

  /** Stops the reply streaming in the shown conversation (the server keeps what was written). */
  async stop(): Promise<void> {
    const tree = this.state.tree;
    if (this.state.pending && !tree?.messages.some((record) => this.state.streaming.has(record.id))) {
      this.stopRequested = true; // not started yet: stop as soon as the server names the reply
      return;
    }
    const target = tree?.messages.find((record) => this.state.streaming.has(record.id));
    if (!target) return;
    try {
      await api.stopReply(target.id);
    } catch (error) {
      this.toast(`Could not stop the reply: ${message(error)}`);
    }
  }

  dismissFailure(): void {
    this.set({ failure: null });
  }

  /** Puts an unsent message back into the composer to be changed. */
  editFailed(): void {
    const failure = this.state.failure;
    this.set({ failure: null, composerRestore: failure?.restore ?? null });
  }

  takeComposerRestore(): string | null {
    const text = this.state.composerRestore;
    if (text !== null) this.set({ composerRestore: null });
    return text;
  }

  private addMessages(conversationId: string, records: readonly MessageRecord[], leafId: string): void {
    const tree = this.state.tree;
    if (!tree || tree.conversation.id !== conversationId) return;
    const messages = upsertMessages(tree.messages, records);
    this.set({ tree: { ...tree, messages, activePath: pathTo(messages, leafId), conversation: { ...tree.conversation, activeLeafId: leafId } } });
  }

  private callbacks(conversationId: string, holder: { id?: string }, sentAt: number): ReplyCallbacks {
    return {
      onStart: (start) => {
        const id = start.assistantMessage.id;
        holder.id = id;
        this.live.start(id, conversationId, { text: '', reasoning: '', toolCalls: [] }, sentAt);
        this.set({ pending: null, streaming: withSet(this.state.streaming, id, true) });
        this.addMessages(conversationId, start.userMessage ? [start.userMessage, start.assistantMessage] : [start.assistantMessage], id);
        // The server titles a new conversation from its first message before replying: show that title now.
        const shown = this.state.conversations.find((conversation) => conversation.id === conversationId);
        if (start.userMessage && start.userMessage.parentId === null && shown?.title === 'New conversation') {
          void api.getConversation(conversationId).then((tree) => this.upsertConversation(tree.conversation), () => undefined);
        }
        if (this.stopRequested) {
          this.stopRequested = false;
          void api.stopReply(id).catch(() => undefined);
        }
      },
      onDelta: (text) => {
        if (holder.id) this.live.append(holder.id, text);
      },
      onReasoning: (text) => {
        if (holder.id) this.live.appendReasoning(holder.id, text);
      },
      onToolCalls: (calls) => {
        if (holder.id) this.live.setToolCalls(holder.id, calls);
      },
      onReconnect: (attempt) => {
        if (holder.id) this.live.setReconnecting(holder.id, attempt);
        if (attempt > 0) void this.watchConnection();
      },
    };
  }

  /** Sends a reply-starting request; `pending` is the optimistic turn shown meanwhile (none when continuing a shown reply). */
  private async run(conversationId: string, path: string, body: unknown, pending: PendingTurn | null): Promise<void> {
    const holder: { id?: string } = {};
    this.stopRequested = false;
    this.set({ pending, failure: null });
    try {
      const done = await startReply(path, body, this.callbacks(conversationId, holder, performance.now()));
      this.finish(done);
    } catch (error) {
      if (isAbort(error)) return;
      if (holder.id === undefined) {
        this.set({
          pending: null,
          failure: { conversationId, message: message(error), restore: pending?.content ?? null, retry: () => void this.run(conversationId, path, body, pending) },
        });
      } else this.connectionLost(holder.id, error);
    }
  }

  /** Follows a reply another page load (or tab) started, from what is already stored (or shown, if that is more). */
  follow(record: MessageRecord): void {
    if (this.state.streaming.has(record.id)) return;
    const existing = this.live.get(record.id);
    const longer = (shown: string | undefined, stored: string): string => (shown !== undefined && shown.length >= stored.length ? shown : stored);
    const toolCalls = existing && toolCallsSize(existing.toolCalls) >= toolCallsSize(record.toolCalls) ? existing.toolCalls : record.toolCalls;
    const parts = { text: longer(existing?.text, record.content), reasoning: longer(existing?.reasoning, record.reasoning), toolCalls };
    this.live.start(record.id, record.conversationId, parts, performance.now(), true);
    const lost = new Map(this.state.lost);
    lost.delete(record.id);
    this.set({ streaming: withSet(this.state.streaming, record.id, true), lost });
    const holder = { id: record.id };
    const callbacks = this.callbacks(record.conversationId, holder, performance.now());
    const { onStart: _ignored, ...following } = callbacks;
    followReply(record.id, { text: parts.text.length, reasoning: parts.reasoning.length, tools: toolCallsSize(parts.toolCalls) }, following).then(
      (done) => this.finish(done),
      (error: unknown) => {
        if (!isAbort(error)) this.connectionLost(record.id, error);
      },
    );
  }

  private connectionLost(id: string, error: unknown): void {
    const lost = new Map(this.state.lost);
    lost.set(id, message(error));
    this.set({ streaming: withSet(this.state.streaming, id, false), lost, pending: null });
  }

  /** Reconnects a reply whose connection was lost. */
  retryLost(record: MessageRecord): void {
    const live = this.live.get(record.id);
    this.follow(live ? { ...record, content: live.text, reasoning: live.reasoning, toolCalls: live.toolCalls } : record);
  }

  private finish(done: ReplyDone): void {
    const record = done.message;
    const tree = this.state.tree;
    if (tree && tree.conversation.id === record.conversationId) {
      this.set({ tree: { ...tree, messages: upsertMessages(tree.messages, [record]) } });
    }
    if (done.conversation) this.upsertConversation(done.conversation);
    const lost = new Map(this.state.lost);
    lost.delete(record.id);
    this.set({ streaming: withSet(this.state.streaming, record.id, false), lost });
    this.live.end(record.id);
    // Cut by a server shutting down: it is about to be gone, and the banner says so until it is back.
    if (record.error?.code === 'server_stopped') void this.watchConnection();
  }
}

export const store = new AppStore();

/** Reads a slice of the state; the component re-renders when that slice changes (compare by identity). */
export function useAppState<T>(selector: (state: AppState) => T): T {
  return useSyncExternalStore(store.subscribe, () => selector(store.getState()));
}
