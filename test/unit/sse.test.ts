import { describe, expect, it } from 'vitest';
import { formatEvent } from '../../src/http/sse.js';

describe('formatEvent', () => {
  it('frames a single line', () => {
    expect(formatEvent('hello')).toBe('data: hello\n\n');
  });

  it('gives every line of multi-line data its own data field, whatever the line ending', () => {
    expect(formatEvent('a\nb\r\nc\rd')).toBe('data: a\ndata: b\ndata: c\ndata: d\n\n');
    expect(formatEvent('\n')).toBe('data: \ndata: \n\n');
  });

  it('puts the event name and id before the data', () => {
    expect(formatEvent('{}', 'end', '7')).toBe('event: end\nid: 7\ndata: {}\n\n');
  });
});
