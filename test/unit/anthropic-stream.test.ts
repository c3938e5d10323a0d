/**
 * The Anthropic stream encoder, byte for byte: blocks open, stream and close one at a time, even when the
 * core's tool calls interleave, and no delta is lost or reordered within its block.
 */
import { describe, expect, it } from 'vitest';
import type { ChatEvent } from '../../src/engines/contract.js';
import { MessageStreamEncoder } from '../../src/http/routes/anthropic/message-stream.js';
import { parseSse } from '../fixtures/server.js';

function encode(events: readonly ChatEvent[], reason: 'stop' | 'length' | 'tool_calls' = 'stop', stopSequence?: string): string {
  const encoder = new MessageStreamEncoder('msg_1', 'm');
  let out = encoder.start(5);
  for (const event of events) out += encoder.event(event);
  return out + encoder.end(reason, stopSequence, { promptTokens: 5, completionTokens: 9 });
}

/** Each event's name and data, and what Anthropic's SDK would rebuild from them: the content blocks. */
function blocksOf(raw: string): { events: string[]; blocks: unknown[] } {
  const events = parseSse(raw);
  const blocks: Record<string, unknown>[] = [];
  let open: number | undefined;
  const partial = new Map<number, string>();
  for (const { event, data } of events) {
    const body = JSON.parse(data) as Record<string, unknown>;
    expect(body['type']).toBe(event);
    if (event === 'content_block_start') {
      expect(open).toBeUndefined(); // blocks never interleave
      open = body['index'] as number;
      expect(open).toBe(blocks.length);
      blocks.push({ ...(body['content_block'] as Record<string, unknown>) });
    } else if (event === 'content_block_delta') {
      expect(body['index']).toBe(open);
      const delta = body['delta'] as Record<string, string>;
      const block = blocks[open ?? -1] as Record<string, unknown>;
      if (delta['type'] === 'text_delta') block['text'] = `${String(block['text'])}${delta['text']}`;
      else if (delta['type'] === 'thinking_delta') block['thinking'] = `${String(block['thinking'])}${delta['thinking']}`;
      else partial.set(open ?? -1, `${partial.get(open ?? -1) ?? ''}${delta['partial_json']}`);
    } else if (event === 'content_block_stop') {
      expect(body['index']).toBe(open);
      const json = partial.get(open ?? -1);
      if (json !== undefined) (blocks[open ?? -1] as Record<string, unknown>)['input'] = JSON.parse(json);
      open = undefined;
    }
  }
  expect(open).toBeUndefined();
  return { events: events.map((event) => event.event), blocks };
}

describe('MessageStreamEncoder', () => {
  it('writes the exact bytes of a text reply', () => {
    const raw = encode([
      { type: 'text-delta', text: 'Hel' },
      { type: 'text-delta', text: 'lo "x"\n' },
    ]);
    expect(raw).toBe(
      'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":0}}}\n\n' +
        'event: ping\ndata: {"type":"ping"}\n\n' +
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n' +
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n' +
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo \\"x\\"\\n"}}\n\n' +
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n' +
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":5,"output_tokens":9}}\n\n' +
        'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    );
  });

  it('names the stop sequence, and says max_tokens for a reply cut by length', () => {
    expect(encode([{ type: 'text-delta', text: 'a' }], 'stop', 'END')).toContain('"delta":{"stop_reason":"stop_sequence","stop_sequence":"END"}');
    expect(encode([{ type: 'text-delta', text: 'a' }], 'length')).toContain('"delta":{"stop_reason":"max_tokens","stop_sequence":null}');
  });

  it('puts thinking in a thinking block before the text block', () => {
    const { events, blocks } = blocksOf(
      encode([
        { type: 'reasoning-delta', text: 'Let me ' },
        { type: 'reasoning-delta', text: 'think.' },
        { type: 'text-delta', text: 'Answer.' },
      ]),
    );
    expect(blocks).toEqual([
      { type: 'thinking', thinking: 'Let me think.', signature: '' },
      { type: 'text', text: 'Answer.' },
    ]);
    expect(events).toEqual(['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  });

  it('serialises interleaved parallel tool calls block by block, each with its whole arguments', () => {
    const raw = encode(
      [
        { type: 'text-delta', text: 'Calling.' },
        { type: 'tool-call-start', index: 0, id: 'call_a', name: 'weather' },
        { type: 'tool-call-delta', index: 0, argumentsDelta: '{"city":' },
        { type: 'tool-call-start', index: 1, id: 'call_b', name: 'time' },
        { type: 'tool-call-delta', index: 1, argumentsDelta: '{"zone":"U' },
        { type: 'tool-call-delta', index: 0, argumentsDelta: '"Paris"}' },
        { type: 'tool-call-delta', index: 1, argumentsDelta: 'TC"}' },
        { type: 'text-delta', text: 'Done.' },
      ],
      'tool_calls',
    );
    const { blocks } = blocksOf(raw);
    expect(blocks).toEqual([
      { type: 'text', text: 'Calling.' },
      { type: 'tool_use', id: 'call_a', name: 'weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'call_b', name: 'time', input: { zone: 'UTC' } },
      { type: 'text', text: 'Done.' },
    ]);
    expect(raw).toContain('"delta":{"stop_reason":"tool_use","stop_sequence":null}');
    // The first call streams live, in its two fragments; the held one goes out whole.
    expect(raw).toContain('{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\":"}}');
    expect(raw).toContain('{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"zone\\":\\"UTC\\"}"}}');
  });

  it('sends a call without arguments as an empty input', () => {
    const { blocks } = blocksOf(encode([{ type: 'tool-call-start', index: 0, id: 'call_a', name: 'now' }], 'tool_calls'));
    expect(blocks).toEqual([{ type: 'tool_use', id: 'call_a', name: 'now', input: {} }]);
  });
});
