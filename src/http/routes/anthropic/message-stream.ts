import type { ChatEvent, FinishReason, TokenUsage } from '../../../engines/contract.js';
import { ParlanceError } from '../../../errors.js';
import { anthropicErrorBody } from './errors.js';
import type { AnthropicUsage, StopReason } from './schema.js';

/** Anthropic's `stop_reason` for how a generation ended (cancelled and failed ones end with an error event instead). */
export function toStopReason(reason: FinishReason, stopSequence: string | undefined, madeToolCalls: boolean): StopReason {
  if (reason === 'length') return 'max_tokens';
  if (reason === 'tool_calls' || madeToolCalls) return 'tool_use';
  return stopSequence === undefined ? 'end_turn' : 'stop_sequence';
}

export function toAnthropicUsage(usage: TokenUsage): AnthropicUsage {
  // Anthropic counts cache reads apart from the input tokens that were evaluated.
  const cached = usage.cachedPromptTokens;
  return cached === undefined
    ? { input_tokens: usage.promptTokens, output_tokens: usage.completionTokens }
    : { input_tokens: usage.promptTokens - cached, output_tokens: usage.completionTokens, cache_read_input_tokens: cached };
}

const frame = (event: string, data: string): string => `event: ${event}\ndata: ${data}\n\n`;

/** The SSE frame of an error, after the stream has started. */
export function errorFrame(error: ParlanceError): string {
  return frame('error', JSON.stringify(anthropicErrorBody(error)));
}

/** The keep-alive Anthropic's own streams send: a `ping` event, which every client of the dialect knows. */
export const pingFrame = frame('ping', '{"type":"ping"}');

type HeldBlock = { kind: 'text' | 'thinking'; text: string } | { kind: 'tool'; call: number; id: string; name: string; json: string };

/**
 * Turns the core's events into Anthropic's stream: `message_start`, then content blocks one at a time
 * (`content_block_start`, deltas, `content_block_stop`), then `message_delta` and `message_stop`.
 *
 * Anthropic's blocks never interleave, while the core's tool calls may (two parallel calls keyed by index).
 * So text and thinking stream live until the first tool call; that call streams live too, and from then on
 * everything else (another call, text after the call) is held and sent block by block at the end, each held
 * block as one delta. Nothing is reordered within a block, and no delta is lost.
 *
 * Pure: every method returns the frames to write, so the exact bytes can be tested without a socket.
 */
export class MessageStreamEncoder {
  private nextIndex = 0;
  /** The block being streamed: its index, and for a tool call the call's index. */
  private live: { kind: 'text' | 'thinking' | 'tool'; index: number; call: number } | undefined;
  /** Set once a tool call streams live: from then on everything else waits in `held`. */
  private holding = false;
  private readonly held: HeldBlock[] = [];
  private madeToolCalls = false;

  constructor(
    private readonly id: string,
    private readonly model: string,
  ) {}

  /** `message_start` (with the prompt's tokens, known at admission) and the first `ping`. */
  start(inputTokens: number): string {
    const message = { id: this.id, type: 'message', role: 'assistant', model: this.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens, output_tokens: 0 } };
    return frame('message_start', `{"type":"message_start","message":${JSON.stringify(message)}}`) + pingFrame;
  }

  /** Frames for one content event ('' for the rest: usage and finish go to {@link end}). */
  event(event: ChatEvent): string {
    switch (event.type) {
      case 'text-delta':
        return this.text('text', event.text);
      case 'reasoning-delta':
        return this.text('thinking', event.text);
      case 'tool-call-start':
        return this.toolStart(event.index, event.id, event.name);
      case 'tool-call-delta':
        return this.toolDelta(event.index, event.argumentsDelta);
      default:
        return '';
    }
  }

  /** Closes the live block, sends what was held, then `message_delta` and `message_stop`. */
  end(reason: FinishReason, stopSequence: string | undefined, usage: TokenUsage | undefined): string {
    let out = this.closeLive();
    // Held blocks now go out one after another, through the same path as live ones.
    this.holding = false;
    for (const block of this.held.splice(0)) out += this.whole(block);
    const stop = toStopReason(reason, stopSequence, this.madeToolCalls);
    const delta = { stop_reason: stop, stop_sequence: stop === 'stop_sequence' ? (stopSequence ?? null) : null };
    // The whole usage, as Anthropic's own streams now send it: cached prompt tokens are only known at the end.
    const totals = usage === undefined ? { output_tokens: 0 } : toAnthropicUsage(usage);
    out += frame('message_delta', `{"type":"message_delta","delta":${JSON.stringify(delta)},"usage":${JSON.stringify(totals)}}`);
    return out + frame('message_stop', '{"type":"message_stop"}');
  }

  private text(kind: 'text' | 'thinking', text: string): string {
    if (text === '') return '';
    if (this.holding) {
      const last = this.held.at(-1);
      if (last !== undefined && last.kind === kind) last.text += text;
      else this.held.push({ kind, text });
      return '';
    }
    let out = '';
    if (this.live?.kind !== kind) out = this.closeLive() + this.open(kind === 'text' ? '{"type":"text","text":""}' : '{"type":"thinking","thinking":"","signature":""}', kind, -1);
    return out + this.delta(kind === 'text' ? `{"type":"text_delta","text":${JSON.stringify(text)}}` : `{"type":"thinking_delta","thinking":${JSON.stringify(text)}}`);
  }

  private toolStart(call: number, id: string, name: string): string {
    this.madeToolCalls = true;
    if (this.holding) {
      this.held.push({ kind: 'tool', call, id, name, json: '' });
      return '';
    }
    this.holding = true;
    return this.closeLive() + this.open(JSON.stringify({ type: 'tool_use', id, name, input: {} }), 'tool', call);
  }

  private toolDelta(call: number, json: string): string {
    if (json === '') return '';
    if (this.live?.kind === 'tool' && this.live.call === call) return this.delta(`{"type":"input_json_delta","partial_json":${JSON.stringify(json)}}`);
    const held = this.held.find((block) => block.kind === 'tool' && block.call === call);
    if (held?.kind === 'tool') held.json += json;
    return '';
  }

  private open(block: string, kind: 'text' | 'thinking' | 'tool', call: number): string {
    const index = this.nextIndex++;
    this.live = { kind, index, call };
    return frame('content_block_start', `{"type":"content_block_start","index":${index},"content_block":${block}}`);
  }

  private delta(delta: string): string {
    return frame('content_block_delta', `{"type":"content_block_delta","index":${this.live?.index ?? 0},"delta":${delta}}`);
  }

  private closeLive(): string {
    if (this.live === undefined) return '';
    const index = this.live.index;
    this.live = undefined;
    return frame('content_block_stop', `{"type":"content_block_stop","index":${index}}`);
  }

  /** A held block, sent whole: start, one delta, stop. */
  private whole(block: HeldBlock): string {
    if (block.kind === 'tool') {
      const out = this.open(JSON.stringify({ type: 'tool_use', id: block.id, name: block.name, input: {} }), 'tool', block.call);
      return out + (block.json === '' ? '' : this.delta(`{"type":"input_json_delta","partial_json":${JSON.stringify(block.json)}}`)) + this.closeLive();
    }
    return this.text(block.kind, block.text) + this.closeLive();
  }
}
