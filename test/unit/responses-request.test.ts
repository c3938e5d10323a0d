import { describe, expect, it } from 'vitest';
import { toChatMessages } from '../../src/http/routes/openai-responses/request.js';

describe('Responses input items as chat messages', () => {
  it('joins reasoning, text and calls into one assistant turn and names tool outputs after their call', () => {
    const messages = toChatMessages(
      'Be brief.',
      [
        { role: 'user', content: 'Weather in Paris and Rome?' },
        { type: 'reasoning', summary: [{ type: 'summary_text', text: 'Two cities.' }] },
        { role: 'assistant', content: [{ type: 'output_text', text: 'Checking.' }] },
        { type: 'function_call', call_id: 'c1', name: 'weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call', call_id: 'c2', name: 'weather', arguments: '{"city":"Rome"}' },
        { type: 'function_call_output', call_id: 'c1', output: 'sunny' },
        { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: 'rain' }] },
        { role: 'assistant', content: 'Paris sunny, Rome rain.' },
        { role: 'developer', content: 'Now in French.' },
      ],
      0,
    );
    expect(messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather in Paris and Rome?' },
      {
        role: 'assistant',
        content: 'Checking.',
        reasoning: 'Two cities.',
        toolCalls: [
          { id: 'c1', name: 'weather', arguments: '{"city":"Paris"}' },
          { id: 'c2', name: 'weather', arguments: '{"city":"Rome"}' },
        ],
      },
      { role: 'tool', content: 'sunny', toolCallId: 'c1', name: 'weather' },
      { role: 'tool', content: 'rain', toolCallId: 'c2', name: 'weather' },
      { role: 'assistant', content: 'Paris sunny, Rome rain.' },
      { role: 'system', content: 'Now in French.' },
    ]);
  });

  it('keeps an image part as an image, for models that see them', () => {
    const [message] = toChatMessages(undefined, [{ role: 'user', content: [{ type: 'input_text', text: 'What is this?' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] }], 0);
    expect(message).toEqual({ role: 'user', content: 'What is this?', parts: [{ type: 'text', text: 'What is this?' }, { type: 'image', url: 'data:image/png;base64,AAAA' }] });
  });
});
