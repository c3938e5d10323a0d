import type { ChatEvent, FinishReason, TokenUsage } from '../../../engines/contract.js';
import type { ErrorCode } from '../../../errors.js';

/**
 * A Responses API answer being built from a generation's events: the output items (reasoning, message,
 * function calls) in the order they began, and, when streaming, the typed SSE events that announce them
 * (`response.output_item.added`, `response.output_text.delta`, …), each with its `sequence_number`.
 *
 * Reasoning goes out as a reasoning item's summary (`response.reasoning_summary_text.delta`): that is the
 * form the SDKs read (the AI SDK knows no other), and the full thinking text is what Parlance has.
 */

export type ResponseStatus = 'completed' | 'incomplete' | 'failed' | 'in_progress';

/** The response object's fields that do not change while it is generated. */
export type ResponseShell = Readonly<Record<string, unknown>> & { readonly id: string };

export type OutputItem = Readonly<Record<string, unknown>> & { readonly type: string; readonly id: string };

interface OpenItem {
  readonly kind: 'message' | 'reasoning' | 'function_call';
  readonly index: number;
  readonly id: string;
  readonly parts: string[];
  readonly callId?: string;
  readonly name?: string;
  /** The head of this item's delta events, serialised once. */
  readonly deltaHead: string;
}

export interface ResponseOutcome {
  readonly status: ResponseStatus;
  readonly usage: TokenUsage;
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

/** OpenAI's usage block. */
function usageOf(usage: TokenUsage): Record<string, unknown> {
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: usage.cachedPromptTokens ?? 0 },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: usage.reasoningTokens ?? 0 },
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

export function statusOf(reason: FinishReason): ResponseStatus {
  if (reason === 'length') return 'incomplete';
  if (reason === 'error' || reason === 'cancelled') return 'failed';
  return 'completed';
}

export class ResponseOutput {
  private sequence = 0;
  private readonly items: OutputItem[] = [];
  /** The text or reasoning item now receiving deltas. */
  private current: OpenItem | undefined;
  /** Function calls still receiving argument deltas, by the engine's call index. */
  private readonly calls = new Map<number, OpenItem>();
  private nextIndex = 0;
  private readonly key: string;
  private ok = true;

  /**
   * @param shell the response's fixed fields (id `resp_<key>`)
   * @param send writes one SSE frame and says whether the socket can take more; absent: not streaming
   */
  constructor(
    private readonly shell: ResponseShell,
    private readonly send?: (frame: string) => boolean,
  ) {
    this.key = shell.id.slice('resp_'.length);
  }

  /** The response object at this point, as GET and the lifecycle events show it. */
  response(outcome: ResponseOutcome | undefined): Record<string, unknown> {
    const output = outcome === undefined ? [] : this.items;
    return {
      ...this.shell,
      status: outcome?.status ?? 'in_progress',
      error: outcome?.error === undefined ? null : { code: outcome.error.code, message: outcome.error.message },
      incomplete_details: outcome?.status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
      output,
      usage: outcome === undefined ? null : usageOf(outcome.usage),
    };
  }

  /** The output items so far, in order. */
  get output(): readonly OutputItem[] {
    return this.items;
  }

  /** Sends `response.created` and `response.in_progress`. */
  start(): boolean {
    const body = `"response":${JSON.stringify(this.response(undefined))}`;
    this.event('response.created', body);
    this.event('response.in_progress', body);
    return this.flushOk();
  }

  /** Takes one engine event; false when the socket is full (await its drain before the next). */
  take(event: ChatEvent): boolean {
    switch (event.type) {
      case 'text-delta':
        if (event.text !== '') this.delta(this.currentOf('message'), event.text);
        break;
      case 'reasoning-delta':
        if (event.text !== '') this.delta(this.currentOf('reasoning'), event.text);
        break;
      case 'tool-call-start':
        this.closeCurrent();
        this.calls.set(event.index, this.open('function_call', { callId: event.id, name: event.name }));
        break;
      case 'tool-call-delta': {
        const call = this.calls.get(event.index);
        if (call !== undefined && event.argumentsDelta !== '') this.delta(call, event.argumentsDelta);
        break;
      }
      default:
        break;
    }
    return this.flushOk();
  }

  /** Closes every open item and sends the terminal event (`response.completed`, `.incomplete` or `.failed`). */
  finish(outcome: ResponseOutcome): Record<string, unknown> {
    this.closeAll();
    const response = this.response(outcome);
    const type = outcome.status === 'completed' ? 'response.completed' : outcome.status === 'incomplete' ? 'response.incomplete' : 'response.failed';
    this.event(type, `"response":${JSON.stringify(response)}`);
    return response;
  }

  /** Closes the open items without sending anything more (the answer is not streamed, or the client left). */
  closeAll(): void {
    this.closeCurrent();
    for (const call of [...this.calls.values()].sort((a, b) => a.index - b.index)) this.close(call);
    this.calls.clear();
  }

  private flushOk(): boolean {
    const ok = this.ok;
    this.ok = true;
    return ok;
  }

  private event(type: string, body: string): void {
    if (this.send === undefined) return;
    if (!this.send(`event: ${type}\ndata: {"type":"${type}",${body},"sequence_number":${this.sequence++}}\n\n`)) this.ok = false;
  }

  private currentOf(kind: 'message' | 'reasoning'): OpenItem {
    if (this.current?.kind === kind) return this.current;
    this.closeCurrent();
    this.current = this.open(kind, {});
    return this.current;
  }

  private open(kind: OpenItem['kind'], call: { callId?: string; name?: string }): OpenItem {
    const index = this.nextIndex++;
    const id = `${kind === 'message' ? 'msg' : kind === 'reasoning' ? 'rs' : 'fc'}_${this.key}_${index}`;
    const where = `"item_id":"${id}","output_index":${index}`;
    const deltaHead =
      kind === 'message'
        ? `event: response.output_text.delta\ndata: {"type":"response.output_text.delta",${where},"content_index":0,"logprobs":[],"delta":`
        : kind === 'reasoning'
          ? `event: response.reasoning_summary_text.delta\ndata: {"type":"response.reasoning_summary_text.delta",${where},"summary_index":0,"delta":`
          : `event: response.function_call_arguments.delta\ndata: {"type":"response.function_call_arguments.delta",${where},"delta":`;
    const item: OpenItem = { kind, index, id, parts: [], deltaHead, ...call };
    this.event('response.output_item.added', `"output_index":${index},"item":${JSON.stringify(this.itemOf(item, 'in_progress'))}`);
    if (kind === 'message') this.event('response.content_part.added', `${where},"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}`);
    else if (kind === 'reasoning') this.event('response.reasoning_summary_part.added', `${where},"summary_index":0,"part":{"type":"summary_text","text":""}`);
    return item;
  }

  private delta(item: OpenItem, text: string): void {
    item.parts.push(text);
    if (this.send === undefined) return;
    if (!this.send(`${item.deltaHead}${JSON.stringify(text)},"sequence_number":${this.sequence++}}\n\n`)) this.ok = false;
  }

  private closeCurrent(): void {
    if (this.current === undefined) return;
    this.close(this.current);
    this.current = undefined;
  }

  private close(item: OpenItem): void {
    const text = item.parts.join('');
    const where = `"item_id":"${item.id}","output_index":${item.index}`;
    if (item.kind === 'message') {
      this.event('response.output_text.done', `${where},"content_index":0,"logprobs":[],"text":${JSON.stringify(text)}`);
      this.event('response.content_part.done', `${where},"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":${JSON.stringify(text)}}`);
    } else if (item.kind === 'reasoning') {
      this.event('response.reasoning_summary_text.done', `${where},"summary_index":0,"text":${JSON.stringify(text)}`);
      this.event('response.reasoning_summary_part.done', `${where},"summary_index":0,"part":{"type":"summary_text","text":${JSON.stringify(text)}}`);
    } else {
      this.event('response.function_call_arguments.done', `${where},"name":${JSON.stringify(item.name ?? '')},"arguments":${JSON.stringify(text)}`);
    }
    const done = this.itemOf(item, 'completed');
    this.items[item.index] = done;
    this.event('response.output_item.done', `"output_index":${item.index},"item":${JSON.stringify(done)}`);
  }

  private itemOf(item: OpenItem, status: 'in_progress' | 'completed'): OutputItem {
    const text = status === 'completed' ? item.parts.join('') : '';
    if (item.kind === 'message') {
      return { type: 'message', id: item.id, status, role: 'assistant', content: status === 'completed' ? [{ type: 'output_text', text, annotations: [], logprobs: [] }] : [] };
    }
    if (item.kind === 'reasoning') return { type: 'reasoning', id: item.id, summary: status === 'completed' ? [{ type: 'summary_text', text }] : [] };
    return { type: 'function_call', id: item.id, call_id: item.callId ?? '', name: item.name ?? '', arguments: text, status };
  }
}
