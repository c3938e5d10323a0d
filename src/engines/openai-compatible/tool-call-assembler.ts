import type { ChatEvent } from '../contract.js';

/** One call as the upstream sends it, until its name is whole. */
interface UpstreamCall {
  /** Our index, in the order calls start; undefined while the name may still grow. */
  index: number | undefined;
  id: string;
  name: string;
  /** Argument text that came before the name was known whole. */
  buffered: string[];
}

/** The part of a `delta.tool_calls` entry we read; checked before use, since the upstream is untrusted. */
interface ToolCallDelta {
  readonly index?: unknown;
  readonly id?: unknown;
  readonly function?: { readonly name?: unknown; readonly arguments?: unknown } | null;
}

/**
 * Turns OpenAI-style `delta.tool_calls` entries into `tool-call-start` and `tool-call-delta` events.
 *
 * Servers differ: vLLM sends the id and whole name first, then argument fragments; llama-server may
 * split a name over several chunks; Ollama sends a whole call in one delta, sometimes without an index.
 * So a name is buffered until it is known whole (its first argument text arrives, another call begins,
 * or the stream finishes), and only then does the call start, with what was buffered after it.
 * Calls are keyed by the upstream's index, so interleaved parallel calls stay apart.
 */
export class ToolCallAssembler {
  private readonly calls = new Map<number, UpstreamCall>();
  private started = 0;
  private lastKey: number | undefined;

  constructor(
    private readonly out: ChatEvent[],
    private readonly newId: () => string,
  ) {}

  /** Calls started so far. */
  get count(): number {
    return this.started;
  }

  /** One entry of `delta.tool_calls` (or of a whole message's `tool_calls`, with `fallbackIndex`). */
  add(entry: unknown, fallbackIndex?: number): void {
    if (typeof entry !== 'object' || entry === null) return;
    const { index, id, function: fn } = entry as ToolCallDelta;
    const key = typeof index === 'number' ? index : (fallbackIndex ?? this.keyWithoutIndex(typeof id === 'string' ? id : ''));
    let call = this.calls.get(key);
    if (call === undefined) {
      // Another call begins: any call still waiting on its name has it whole now.
      this.startNamed();
      call = { index: undefined, id: '', name: '', buffered: [] };
      this.calls.set(key, call);
    }
    this.lastKey = key;
    if (typeof id === 'string' && id !== '' && call.id === '') call.id = id;
    const name = typeof fn === 'object' && fn !== null ? fn.name : undefined;
    const args = typeof fn === 'object' && fn !== null ? fn.arguments : undefined;
    if (typeof name === 'string' && name !== '' && call.index === undefined) {
      // A server that repeats the name so far in every delta (rather than sending the rest) is not doubled.
      call.name = call.name !== '' && name.startsWith(call.name) ? name : call.name + name;
    }
    if (typeof args !== 'string' || args === '') return;
    if (call.index !== undefined) {
      this.out.push({ type: 'tool-call-delta', index: call.index, argumentsDelta: args });
      return;
    }
    call.buffered.push(args);
    if (call.name !== '') this.start(call);
  }

  /**
   * The stream finished: calls still waiting on their name start now. Returns a failure when a call
   * never got a name, which no client could act on.
   */
  finish(): string | undefined {
    for (const call of this.calls.values()) {
      if (call.index !== undefined) continue;
      if (call.name === '') return 'sent a tool call without a function name';
      this.start(call);
    }
    return undefined;
  }

  /** Ollama's entries may lack an index: a new id is a new call, anything else continues the last one. */
  private keyWithoutIndex(id: string): number {
    const last = this.lastKey === undefined ? undefined : this.calls.get(this.lastKey);
    if (last !== undefined && (id === '' || id === last.id) && this.lastKey !== undefined) return this.lastKey;
    return this.calls.size === 0 ? 0 : Math.max(...this.calls.keys()) + 1;
  }

  private startNamed(): void {
    for (const call of this.calls.values()) if (call.index === undefined && call.name !== '') this.start(call);
  }

  private start(call: UpstreamCall): void {
    const index = this.started++;
    call.index = index;
    if (call.id === '') call.id = this.newId();
    this.out.push({ type: 'tool-call-start', index, id: call.id, name: call.name });
    for (const args of call.buffered) this.out.push({ type: 'tool-call-delta', index, argumentsDelta: args });
    call.buffered.length = 0;
  }
}
