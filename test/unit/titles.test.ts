import { describe, expect, it } from 'vitest';
import { cleanTitle, fallbackTitle } from '../../src/core/conversation-service.js';

describe('conversation titles', () => {
  it('takes the first words of the first message, without markdown markers, on one line', () => {
    expect(fallbackTitle('## Sorting in two languages')).toBe('Sorting in two languages');
    // Inline Markdown is markup, not part of a title.
    expect(fallbackTitle('**Bold** `parse()` with _care_, [docs](https://example.com)')).toBe('Bold parse() with care, docs');
    expect(fallbackTitle('snake_case_name and 2 * 3 * 4')).toBe('snake_case_name and 2 * 3 * 4');
    expect(cleanTitle('**Sorting** tips')).toBe('Sorting tips');
    expect(fallbackTitle('> quoted\nsecond line')).toBe('quoted second line');
    expect(fallbackTitle('   ')).toBe('New conversation');
    const long = fallbackTitle('word '.repeat(40));
    expect(long.length).toBeLessThanOrEqual(61);
    expect(long.endsWith('…')).toBe(true);
  });

  it("keeps a model's title only when it is usable", () => {
    expect(cleanTitle('"Sorting lists in Python."\nMore text')).toBe('Sorting lists in Python');
    expect(cleanTitle('Title: Weather talk')).toBe('Weather talk');
    expect(cleanTitle('\uFFFD\uFFFD')).toBeUndefined();
    expect(cleanTitle('!')).toBeUndefined();
  });
});
