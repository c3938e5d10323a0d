import type { ChatMessage, FinishReason, ModelInfo, SamplingOptions, TokenUsage } from '../engines/contract.js';
import type { ConversationPatch, ConversationRecord, ConversationSettings, ConversationStore, MessageAttachment, MessageOutcome, MessageRecord, NewConversation } from '../store/contract.js';
import { hasImages, userMessage } from './attachments.js';
import type { ChatService } from './chat-service.js';
import { refuseUnsupportedSettings, resolveSettings, samplingFrom } from './conversation-settings.js';
import { ParlanceError, isParlanceError } from '../errors.js';
import { ReplyRun, type ReplyParts } from './reply-run.js';

export interface ConversationServiceOptions {
  /** The model used when neither the request nor the conversation names one. */
  readonly defaultModel: () => string;
  /**
   * Checks a model id exists (throws `model_not_found`), before anything is written; answers what its engine
   * says of it (undefined when the engine serves the id without listing it: nothing is then known to refuse).
   */
  readonly checkModel: (model: string) => ModelInfo | undefined;
  /**
   * How often a growing reply's text is saved (one shared transaction for every streaming reply, no per-token
   * write). Readers are given only stored text, so that a crash cannot take back what they saw: this is also the
   * granularity of a reply's stream. Default 50 ms: a CPU model's 20–60 tokens a second still arrive one to three
   * at a time (at 250 ms the page showed replies in visible lumps).
   */
  readonly flushIntervalMs?: number;
  /** Whether to ask this model for a title (not the random demo model, nor the echo test model). Default: always. */
  readonly modelTitles?: (model: string) => boolean;
  /** Tokens a generated title may take. */
  readonly titleMaxTokens?: number;
  /**
   * Replicas sharing one store: every `renewMs`, renew the leases of the replies this process generates (and
   * stop those another replica asked to stop); every `sweepMs`, fail any replica's replies whose lease ran out
   * (killed mid-reply). A stop asked here for a reply generated elsewhere waits up to `stopWaitMs` for that
   * replica to store it, then stores it itself. Absent: none of it (one process owns the store).
   */
  readonly leases?: { readonly renewMs: number; readonly sweepMs: number; readonly stopWaitMs: number };
}

/** The title a new conversation has until its first exchange names it. */
const placeholderTitle = 'New conversation';

/** Control and bidirectional formatting characters, which a title (one line of plain text) may not hold; as the API's title schema. */
const controlOrBidi = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Text without Markdown's inline markup: a title is shown as plain text, so `**bold**` is just "bold". */
export function plainText(text: string): string {
  return text
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/`+([^`]*)`+/g, '$1')
    .replace(/(\*\*|\*|~~)(?=\S)([^]*?\S)\1/g, '$2')
    .replace(/(?<!\w)(__?)(?=\S)([^]*?\S)\1(?!\w)/g, '$2') // underscores only outside words: snake_case stays
    .replace(/\$\$?([^$]+)\$\$?/g, '$1');
}

/** Markdown's markers at the start of a line: headings, quotes, list items, task boxes. */
const lineMarkers = /^(?:#{1,6}\s*|>\s*|[*+-]\s+|\d+[.)]\s+|\[[ xX]\]\s*)+/;

/** A plain title from the user's first message: its first words, on one line. */
export function fallbackTitle(text: string): string {
  // Markers at the start of each line (a heading, a quote, a list item, a task box) are not part of the subject.
  const lines = text.split('\n').map((part) => part.trim().replace(lineMarkers, ''));
  const line = plainText(lines.join(' ').replace(/\s+/g, ' ').replace(controlOrBidi, '').trim());
  if (line.length <= 60) return line || placeholderTitle;
  const cut = line.slice(0, 60);
  const space = cut.lastIndexOf(' ');
  return `${space > 30 ? cut.slice(0, space) : cut}…`;
}

/** Cleans what a model answered when asked for a title: one line, no quotes or trailing period. */
export function cleanTitle(raw: string): string | undefined {
  const line = raw.split('\n').map((part) => part.trim()).find(Boolean) ?? '';
  const title = plainText(line.replace(controlOrBidi, '').replace(/^(title:\s*)/i, '')).replace(/^[#\s]+/, '').replace(/^["'“”«»]+|["'“”«».]+$/g, '').trim();
  // Titles of replacement characters or stray symbols are worse than the plain fallback.
  if (title.length < 2 || title.length > 80 || !/\p{L}/u.test(title) || title.includes('\uFFFD')) return undefined;
  return title;
}

/** The model's view of a branch: the system prompt, then every turn that has text (a user's with its files). */
export function historyOf(conversation: Pick<ConversationRecord, 'systemPrompt'>, path: readonly MessageRecord[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (conversation.systemPrompt) messages.push({ role: 'system', content: conversation.systemPrompt });
  for (const message of path) {
    if (message.role === 'user') {
      messages.push(userMessage(message.content, message.attachments));
      continue;
    }
    if (message.role === 'system') {
      messages.push({ role: 'system', content: message.content });
      continue;
    }
    // Calls the model made and got results for go back with their results; one left unanswered does not.
    const answered = message.toolCalls.filter((call) => call.result !== null);
    if (message.status === 'streaming' || (message.content === '' && answered.length === 0)) continue;
    messages.push({
      role: 'assistant',
      content: message.content,
      ...(message.reasoning === '' ? {} : { reasoning: message.reasoning }),
      ...(answered.length === 0 ? {} : { toolCalls: answered.map(({ id, name, arguments: args }) => ({ id, name, arguments: args })) }),
    });
    for (const call of answered) messages.push({ role: 'tool', content: call.result ?? '', toolCallId: call.id, name: call.name });
  }
  return messages;
}

/** What a first message's title is made from: its text, or the names of its files when it has none. */
function titleSource(content: string, attachments: readonly MessageAttachment[] | undefined): string {
  return content.trim() !== '' || attachments === undefined ? content : attachments.map((file) => file.name).join(', ');
}

/** Why a reply cut by a graceful shutdown ended: not the person's stop, and said so. */
export const shutdownError = { code: 'server_stopped', message: 'The server shut down while this reply was being generated; it was cut here.' } as const;

function statusOf(reason: FinishReason): 'complete' | 'stopped' | 'failed' {
  if (reason === 'cancelled') return 'stopped';
  if (reason === 'error') return 'failed';
  return 'complete';
}

export interface StartedReply {
  /** The user message saved for this reply; absent on regenerate. */
  readonly userMessage?: MessageRecord;
  readonly run: ReplyRun;
}

/**
 * The core's promise about conversations: the user's message is stored
 * before generation starts; the reply is stored as `streaming` and its text
 * saved as it grows (every `flushIntervalMs`, not per token); it ends as
 * `complete`, `stopped` or `failed`, with whatever text there was. A reply
 * runs on its own: a client going away does not stop it, `stop` does, from
 * any tab, and from another replica through the store.
 */
export class ConversationService {
  private readonly runs = new Map<string, ReplyRun>();
  /** The runs still generating: their text is saved by {@link saveTexts}. */
  private readonly generating = new Set<ReplyRun>();
  /** Those whose text grew since it was last saved. */
  private readonly unsaved = new Set<ReplyRun>();
  /** Those whose stored reply was ended elsewhere (stopped or recovered by another replica). */
  private readonly takenOver = new WeakSet<ReplyRun>();
  /** Saves every growing reply's text each `flushIntervalMs`, while any is generating. */
  private saveTimer: NodeJS.Timeout | undefined;
  private saving = false;
  private readonly flushIntervalMs: number;
  private readonly titleMaxTokens: number;
  private readonly leaseTimer: NodeJS.Timeout | undefined;
  private leaseBusy = false;
  private lastSweep = 0;

  constructor(
    private readonly store: ConversationStore,
    private readonly chat: ChatService,
    private readonly options: ConversationServiceOptions,
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 50;
    this.titleMaxTokens = options.titleMaxTokens ?? 16;
    const leases = options.leases;
    if (leases !== undefined) {
      this.leaseTimer = setInterval(() => void this.tendLeases(leases.sweepMs), leases.renewMs);
      this.leaseTimer.unref();
    }
  }

  /** The heartbeat of this process's replies, and the sweep of other replicas' expired ones; see `leases`. */
  private async tendLeases(sweepMs: number): Promise<void> {
    if (this.leaseBusy) return;
    this.leaseBusy = true;
    try {
      if (this.generating.size > 0) {
        for (const id of await this.store.renewLeases()) this.runs.get(id)?.stop();
      }
      if (Date.now() - this.lastSweep >= sweepMs) {
        this.lastSweep = Date.now();
        await this.store.recoverInterrupted({ scope: 'expired' });
      }
    } catch {
      // The store is unreachable: the next beat tries again (and a lease that ran out meanwhile is swept).
    } finally {
      this.leaseBusy = false;
    }
  }

  /**
   * What a reply is generated with: the conversation's settings over the global defaults. Refuses
   * (`unsupported_parameter`, naming the field) a setting the model (`info`, from `checkModel`) cannot
   * honour, before anything is written.
   */
  private samplingFor(info: ModelInfo | undefined, defaults: ConversationSettings, own: ConversationSettings): SamplingOptions {
    const resolved = resolveSettings(defaults, own);
    refuseUnsupportedSettings(resolved, info);
    return samplingFrom(resolved.settings);
  }

  /** `input` with a preset's system prompt and settings under what it gives itself (`not_found`, param `presetId`, for none). */
  private async withPreset<T extends NewConversation>(input: T & { readonly presetId?: string }): Promise<T> {
    const { presetId, ...fields } = input;
    if (presetId === undefined) return fields as T;
    const preset = await this.store.settings.getPreset(presetId);
    if (preset === undefined) throw new ParlanceError('not_found', `No preset ${presetId}.`, { param: 'presetId' });
    return { systemPrompt: preset.systemPrompt, settings: preset.settings, ...fields } as T;
  }

  /** Refuses settings the conversation's model (or the default model) cannot honour, and a model no engine serves. */
  private checkOwnSettings(model: string | null, settings: ConversationSettings): void {
    const info = model === null ? undefined : this.options.checkModel(model);
    if (Object.keys(settings).length === 0) return;
    let checked = info;
    if (model === null) {
      try {
        checked = this.options.checkModel(this.options.defaultModel());
      } catch {
        // No default model served yet (an upstream still starting): the settings are checked again at each reply.
        return;
      }
    }
    refuseUnsupportedSettings(resolveSettings({}, settings), checked);
  }

  /** Starts a conversation, from a preset when `presetId` names one. */
  async createConversation(input: NewConversation & { readonly presetId?: string }): Promise<ConversationRecord> {
    const fields = await this.withPreset(input);
    this.checkOwnSettings(fields.model ?? null, fields.settings ?? {});
    return this.store.createConversation(fields);
  }

  /** Renames or changes a conversation; `presetId` applies a preset (its system prompt and settings replace the conversation's). */
  async updateConversation(id: string, input: ConversationPatch & { readonly presetId?: string }): Promise<ConversationRecord> {
    const patch = await this.withPreset(input);
    if (patch.model !== undefined || patch.settings !== undefined) {
      const conversation = await this.requireConversation(id);
      this.checkOwnSettings(patch.model === undefined ? conversation.model : patch.model, patch.settings ?? conversation.settings);
    }
    return this.store.updateConversation(id, patch);
  }

  /** The reply with this id being generated in this process, if any. */
  liveRun(messageId: string): ReplyRun | undefined {
    return this.runs.get(messageId);
  }

  async requireConversation(id: string): Promise<ConversationRecord> {
    const conversation = await this.store.getConversation(id);
    if (!conversation) throw new ParlanceError('not_found', `No conversation ${id}.`);
    return conversation;
  }

  private async requireMessage(conversationId: string, messageId: string, param: string): Promise<MessageRecord> {
    const message = await this.store.getMessage(messageId);
    if (!message || message.conversationId !== conversationId) throw new ParlanceError('not_found', `No message ${messageId} in conversation ${conversationId}.`, { param });
    return message;
  }

  /** The model's view of a conversation's active branch (its system prompt first), and the model it uses. */
  async activeHistory(conversationId: string): Promise<{ model: string; messages: ChatMessage[] }> {
    const conversation = await this.requireConversation(conversationId);
    const path = (await this.store.getActivePath(conversationId)) ?? [];
    return { model: conversation.model ?? this.options.defaultModel(), messages: historyOf(conversation, path) };
  }

  /** Saves the user's message (with its files) and starts the reply to it. */
  async send(conversationId: string, input: { content: string; attachments?: readonly MessageAttachment[]; parentId?: string | null; model?: string }): Promise<StartedReply> {
    let model = '';
    let firstExchange = false;
    let sampling: SamplingOptions = {};
    const defaults = await this.store.settings.getDefaults();
    // One transaction, which also reads the conversation (no read of its own before it): the model and
    // parent are decided from it there, and the model checked, before anything is written; then the
    // user's message, the reply started as `streaming` (both committed before generation starts), the
    // plain title of a first exchange, and the branch for the model. The store checks there that the
    // parent is a message of this conversation (not_found, param parentId).
    const started = await this.store.startExchange({
      conversationId,
      content: input.content,
      ...(input.attachments === undefined ? {} : { attachments: input.attachments }),
      decide: (conversation) => {
        model = input.model ?? conversation.model ?? this.options.defaultModel();
        const info = this.options.checkModel(model);
        // Refused before anything is written, as a dialect refuses an image part: the person keeps the draft.
        if (hasImages(input.attachments) && info !== undefined && !info.capabilities.has('images')) {
          throw new ParlanceError('unsupported_parameter', `The model '${model}' does not accept images; remove the image or pick a model that does.`, { param: 'attachments' });
        }
        sampling = this.samplingFor(info, defaults, conversation.settings);
        const parentId = input.parentId === undefined ? conversation.activeLeafId : input.parentId;
        firstExchange = conversation.title === placeholderTitle && parentId === null;
        return { parentId, model, ...(firstExchange ? { title: fallbackTitle(titleSource(input.content, input.attachments)) } : {}) };
      },
    });
    const { userMessage, assistantMessage, path } = started;
    const conversation = started.conversation ?? (await this.requireConversation(conversationId));
    const run = this.startRun(conversation, assistantMessage, path, model, sampling, firstExchange ? titleSource(userMessage.content, userMessage.attachments) : undefined);
    return { userMessage, run };
  }

  /** Starts a new reply beside an existing one (or to a user message): a sibling branch. */
  async regenerate(conversationId: string, messageId: string, input: { model?: string }): Promise<StartedReply> {
    const conversation = await this.requireConversation(conversationId);
    const target = await this.requireMessage(conversationId, messageId, 'messageId');
    const answered = target.role === 'assistant' ? target.parentId : target.id;
    if (answered === null) throw new ParlanceError('invalid_request', 'That message answers nothing to regenerate from.', { param: 'messageId' });
    const userMessage = await this.requireMessage(conversationId, answered, 'messageId');
    const model = input.model ?? (target.role === 'assistant' ? target.model : null) ?? conversation.model ?? this.options.defaultModel();
    const sampling = this.samplingFor(this.options.checkModel(model), await this.store.settings.getDefaults(), conversation.settings);
    // The branch through the answered message continues below it (to the old reply): the model sees
    // the path down to that message and nothing after it.
    const branch = await this.store.selectBranch(conversation.id, userMessage.id);
    const path = branch.slice(0, branch.findIndex((message) => message.id === userMessage.id) + 1);
    const assistant = await this.store.startAssistantMessage({ conversationId: conversation.id, parentId: userMessage.id, model });
    return { run: this.startRun(conversation, assistant, path, model, sampling, undefined) };
  }

  /** Generates more of a finished reply (one cut at max tokens, or stopped), into the same message. */
  async continueReply(conversationId: string, messageId: string): Promise<StartedReply> {
    const conversation = await this.requireConversation(conversationId);
    const target = await this.requireMessage(conversationId, messageId, 'messageId');
    if (target.role !== 'assistant') throw new ParlanceError('invalid_request', 'Only a reply can be continued.', { param: 'messageId' });
    const model = target.model ?? conversation.model ?? this.options.defaultModel();
    const sampling = this.samplingFor(this.options.checkModel(model), await this.store.settings.getDefaults(), conversation.settings);
    // The model sees the branch down to the reply, which ends the history: the engine continues it.
    const branch = await this.store.selectBranch(conversation.id, target.id);
    const path = branch.slice(0, branch.findIndex((message) => message.id === target.id) + 1);
    const reopened = await this.store.continueMessage(target.id);
    return { run: this.startRun(conversation, reopened, path, model, sampling, undefined) };
  }

  /** Stops a reply wherever it runs; answers the stored message. Stopping a finished reply changes nothing. */
  async stop(messageId: string): Promise<MessageRecord> {
    const run = this.runs.get(messageId);
    if (run) {
      run.stop();
      return run.done;
    }
    const message = await this.store.getMessage(messageId);
    if (!message) throw new ParlanceError('not_found', `No message ${messageId}.`);
    if (message.status !== 'streaming') return message;
    const leases = this.options.leases;
    if (leases !== undefined && (await this.store.requestStop(messageId))) {
      // Generated by another replica: it sees the request at its next heartbeat, stops, and stores the text it
      // streamed, so that its stream, its final event and the store agree. Waited for, within a bound.
      const deadline = Date.now() + leases.stopWaitMs;
      while (Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(100, leases.renewMs)));
        const now = await this.store.getMessage(messageId);
        if (now === undefined) throw new ParlanceError('not_found', `No message ${messageId}.`);
        if (now.status !== 'streaming') return now;
      }
    }
    // That replica does not answer (or there are no leases): ending it in the store makes the generating
    // replica's next save fail, and it stops.
    try {
      return await this.store.finishMessage(messageId, { status: 'stopped' });
    } catch (error) {
      if (isParlanceError(error) && error.code === 'invalid_request') return (await this.store.getMessage(messageId)) ?? message;
      throw error;
    }
  }

  /** Generates a stored `streaming` reply to the end of `path`, in the background. */
  private startRun(conversation: ConversationRecord, assistant: MessageRecord, path: readonly MessageRecord[], model: string, sampling: SamplingOptions, titleFrom: string | undefined): ReplyRun {
    const run = new ReplyRun(assistant);
    this.runs.set(assistant.id, run);
    this.generating.add(run);
    if (this.saveTimer === undefined) {
      this.saveTimer = setInterval(() => void this.saveTexts(), this.flushIntervalMs);
      this.saveTimer.unref();
    }
    const request = { model, input: { kind: 'chat' as const, messages: historyOf(conversation, path) }, sampling };
    void this.generate(run, request, titleFrom).finally(() => {
      this.runs.delete(assistant.id);
      if (this.generating.size === 0 && this.saveTimer !== undefined) {
        clearInterval(this.saveTimer);
        this.saveTimer = undefined;
      }
    });
    return run;
  }

  /**
   * Saves the text of every reply that grew since the last save, all in one store call: with many
   * replies streaming, one transaction (one commit) a period instead of one per reply, and nothing
   * per token. Each reply's text is thus saved at most once, and at least once, per period while it
   * grows. A save still running when the next period comes skips that period (no pile-up).
   */
  private async saveTexts(): Promise<void> {
    if (this.saving || this.unsaved.size === 0) return;
    this.saving = true;
    const runs = [...this.unsaved];
    this.unsaved.clear();
    const snapshots = runs.map((run) => run.parts());
    try {
      const gone = await this.store.updateStreamingTexts(runs.map((run, i) => ({ messageId: run.message.id, ...(snapshots[i] as ReplyParts) })));
      const ended = new Set(gone);
      // Stored, so now it may be shown: readers never see text a crash could take back.
      runs.forEach((run, i) => {
        const parts = snapshots[i];
        if (parts !== undefined && !ended.has(run.message.id)) run.markSaved(parts);
      });
      for (const id of gone) {
        const run = this.runs.get(id);
        // Ended in the store by someone else (another replica's stop, its recovery): stop generating.
        if (run !== undefined && this.generating.has(run)) {
          this.takenOver.add(run);
          run.stop();
        }
      }
    } catch {
      // The store failed (it may come back): those texts are saved at the next period, or by the finish.
      for (const run of runs) if (this.generating.has(run)) this.unsaved.add(run);
    } finally {
      this.saving = false;
    }
  }

  private async generate(run: ReplyRun, request: Parameters<ChatService['open']>[0], titleFrom: string | undefined): Promise<void> {
    const started = performance.now();
    let firstTokenMs: number | null = null;
    let usage: TokenUsage | null = null;
    let reason: FinishReason = 'error';
    let failure: { code: string; message: string } | undefined;
    try {
      const generation = await this.chat.open(request, run.stopSignal);
      for await (const event of generation) {
        if (event.type === 'text-delta' || event.type === 'reasoning-delta' || event.type === 'tool-call-start' || event.type === 'tool-call-delta') {
          const first = firstTokenMs === null;
          firstTokenMs ??= Math.round(performance.now() - started);
          if (event.type === 'text-delta') run.append(event.text);
          else if (event.type === 'reasoning-delta') run.appendReasoning(event.text);
          else if (event.type === 'tool-call-start') run.startToolCall(event.index, event.id, event.name);
          else run.appendToolArguments(event.index, event.argumentsDelta);
          this.unsaved.add(run); // saved by the next period's saveTexts, not here: nothing per token but this
          // The first output is saved (and so shown) at once, not up to a period later.
          if (first) void this.saveTexts();
        } else if (event.type === 'usage') {
          // What a message records of usage (an engine may report more, such as reasoning tokens).
          usage = { promptTokens: event.usage.promptTokens, completionTokens: event.usage.completionTokens };
        } else if (event.type === 'error') {
          failure = { code: event.code, message: event.message };
        } else if (event.type === 'finish') {
          reason = event.reason;
        }
      }
    } catch (error) {
      // Admission failed (queue full, prompt too long, engine gone): the reply is recorded as failed, with the reason.
      const parlanceError = isParlanceError(error) ? error : new ParlanceError('generation_failed', (error as Error).message);
      failure = { code: parlanceError.code, message: parlanceError.message };
      reason = run.stopSignal.aborted ? 'cancelled' : 'error';
    }
    this.generating.delete(run);
    this.unsaved.delete(run); // the finish saves the whole text
    const takenOver = this.takenOver.has(run);
    const shutDown = run.stoppedBy === 'shutdown' && statusOf(reason) === 'stopped';
    const status = shutDown ? 'failed' : statusOf(reason);
    const timings = { firstTokenMs, totalMs: Math.round(performance.now() - started) };
    // A continued reply counts the tokens of all its generations.
    const before = run.message.usage;
    const total = usage !== null && before !== null ? { promptTokens: usage.promptTokens, completionTokens: before.completionTokens + usage.completionTokens } : usage;
    const parts = { ...run.parts(), finishReason: shutDown ? 'cancelled' : reason, usage: total, timings };
    const outcome: MessageOutcome =
      status === 'failed' ? { status, ...parts, error: shutDown ? shutdownError : (failure ?? { code: 'generation_failed', message: 'The reply failed.' }) } : { status, ...parts };
    let final: MessageRecord;
    // The conversation as the finish left it, for the final frame; absent, listeners read it themselves.
    let conversation: ConversationRecord | undefined;
    try {
      if (takenOver) final = (await this.store.getMessage(run.message.id)) ?? run.message;
      else ({ message: final, conversation } = await this.store.finishReply(run.message.id, outcome));
    } catch {
      // Finished elsewhere between our last save and now (the store's record is the truth), or the
      // store failed: listeners still get an end, and start-up recovery marks a stuck record failed.
      final = (await this.store.getMessage(run.message.id).catch(() => undefined)) ?? { ...run.message, content: run.text, status };
    }
    if (titleFrom !== undefined && status === 'complete' && (this.options.modelTitles?.(request.model) ?? true)) {
      conversation = (await this.nameConversation(run.message.conversationId, request.model, titleFrom)) ?? conversation;
    }
    run.finish(final, conversation);
  }

  /** Asks the model for a short title; keeps the plain one when the answer is unusable. Answers the renamed conversation. */
  private async nameConversation(conversationId: string, model: string, firstMessage: string): Promise<ConversationRecord | undefined> {
    try {
      const generation = await this.chat.open(
        {
          model,
          input: {
            kind: 'chat',
            messages: [
              { role: 'system', content: 'You write short titles for conversations. Answer with the title only: at most six words, no quotes.' },
              { role: 'user', content: `Write a title for a conversation that starts with:\n\n${firstMessage.slice(0, 2000)}` },
            ],
          },
          sampling: { maxTokens: this.titleMaxTokens, temperature: 0.2 },
        },
        AbortSignal.timeout(30_000),
      );
      let raw = '';
      for await (const event of generation) if (event.type === 'text-delta') raw += event.text;
      const title = cleanTitle(raw);
      if (title) return await this.store.updateConversation(conversationId, { title });
    } catch {
      // A title is a nicety: the plain one stays.
    }
    return undefined;
  }

  /** Stops every live reply (shutdown) and waits until each is stored. */
  async stopAll(): Promise<void> {
    clearInterval(this.leaseTimer);
    const runs = [...this.runs.values()];
    for (const run of runs) run.stop('shutdown');
    await Promise.allSettled(runs.map((run) => run.done));
  }
}
