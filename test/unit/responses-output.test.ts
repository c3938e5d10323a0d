import { describe, expect, it } from 'vitest';
import type { ChatEvent } from '../../src/engines/contract.js';
import { ResponseOutput } from '../../src/http/routes/openai-responses/output.js';
import { parseSse } from '../fixtures/server.js';

const key = '0123456789abcdef0123456789abcdef';
const shell = { id: `resp_${key}`, object: 'response', model: 'm' };

function run(events: readonly ChatEvent[]): { frames: { event: string; data: Record<string, unknown> }[]; response: Record<string, unknown> } {
  let raw = '';
  const output = new ResponseOutput(shell, (frame) => {
    raw += frame;
    return true;
  });
  output.start();
  for (const event of events) output.take(event);
  const response = output.finish({ status: 'completed', usage: { promptTokens: 3, completionTokens: 9, reasoningTokens: 2 } });
  return { frames: parseSse(raw).map(({ event, data }) => ({ event, data: JSON.parse(data) as Record<string, unknown> })), response };
}

describe('the Responses stream encoder', () => {
  it('turns reasoning, text and two interleaved calls into items in the order they began, every event numbered', () => {
    const { frames, response } = run([
      { type: 'reasoning-delta', text: 'Think' },
      { type: 'reasoning-delta', text: 'ing.' },
      { type: 'text-delta', text: 'Let me ' },
      { type: 'text-delta', text: 'check.' },
      { type: 'tool-call-start', index: 0, id: 'call_a', name: 'weather' },
      { type: 'tool-call-start', index: 1, id: 'call_b', name: 'time' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '{"city":' },
      { type: 'tool-call-delta', index: 1, argumentsDelta: '{"tz":"UTC"}' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '"Paris"}' },
    ]);
    // The SSE event name is the JSON's type, and sequence numbers count up from 0 without gaps.
    for (const frame of frames) expect(frame.event).toBe(frame.data['type']);
    expect(frames.map((frame) => frame.data['sequence_number'])).toEqual(frames.map((_, i) => i));
    expect(frames.map((frame) => frame.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const argumentDeltas = frames.filter((frame) => frame.event === 'response.function_call_arguments.delta').map((frame) => [frame.data['output_index'], frame.data['delta']]);
    expect(argumentDeltas).toEqual([
      [2, '{"city":'],
      [3, '{"tz":"UTC"}'],
      [2, '"Paris"}'],
    ]);
    expect(response['output']).toEqual([
      { type: 'reasoning', id: `rs_${key}_0`, summary: [{ type: 'summary_text', text: 'Thinking.' }] },
      { type: 'message', id: `msg_${key}_1`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Let me check.', annotations: [], logprobs: [] }] },
      { type: 'function_call', id: `fc_${key}_2`, call_id: 'call_a', name: 'weather', arguments: '{"city":"Paris"}', status: 'completed' },
      { type: 'function_call', id: `fc_${key}_3`, call_id: 'call_b', name: 'time', arguments: '{"tz":"UTC"}', status: 'completed' },
    ]);
    expect(response['usage']).toEqual({ input_tokens: 3, input_tokens_details: { cached_tokens: 0 }, output_tokens: 9, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 12 });
    const completed = frames.at(-1)?.data['response'] as Record<string, unknown>;
    expect(completed['output']).toEqual(response['output']);
    expect(completed['status']).toBe('completed');
    // Deltas name the item they extend.
    const textDelta = frames.find((frame) => frame.event === 'response.output_text.delta')?.data;
    expect(textDelta).toMatchObject({ item_id: `msg_${key}_1`, output_index: 1, content_index: 0, delta: 'Let me ' });
  });

  it('says a failure with response.failed, carrying the error', () => {
    let raw = '';
    const output = new ResponseOutput(shell, (frame) => {
      raw += frame;
      return true;
    });
    output.start();
    output.take({ type: 'text-delta', text: 'partial' });
    output.finish({ status: 'failed', usage: { promptTokens: 1, completionTokens: 1 }, error: { code: 'generation_failed', message: 'boom' } });
    const last = parseSse(raw).at(-1);
    expect(last?.event).toBe('response.failed');
    const response = (JSON.parse(last?.data ?? '{}') as { response: Record<string, unknown> }).response;
    expect(response).toMatchObject({ status: 'failed', error: { code: 'generation_failed', message: 'boom' } });
    expect((response['output'] as { content: { text: string }[] }[])[0]?.content[0]?.text).toBe('partial');
  });
});
