import { useEffect, type RefObject } from 'react';

/** Characters inserted at once from which a text box inserts them itself instead of through the browser's editing. */
export const LARGE_INSERT = 2000;

/**
 * Chromium inserts pasted or committed text into a `<textarea>` one line at a
 * time, laying out the whole box after each (a 20 KB paste of 500 lines
 * blocked the page for 1–2 s, 10 s at 4x CPU throttling). Setting the text
 * with `setRangeText` does it in one step. Small insertions keep the native
 * path and its undo history; a large one is inserted here (it cannot be
 * undone with Ctrl+Z, the price of a page that does not freeze), and an
 * `input` event tells React's `onChange` as typing would.
 *
 * A paste that carries files is left alone, for whoever handles attachments.
 */
export function insertLargeText(area: HTMLTextAreaElement, text: string): void {
  area.setRangeText(text, area.selectionStart, area.selectionEnd, 'end');
  area.dispatchEvent(new Event('input', { bubbles: true }));
}

function onPaste(event: ClipboardEvent): void {
  const area = event.currentTarget;
  const data = event.clipboardData;
  if (event.defaultPrevented || !(area instanceof HTMLTextAreaElement) || !data || data.files.length > 0) return;
  const text = data.getData('text/plain');
  if (text.length < LARGE_INSERT) return;
  event.preventDefault();
  insertLargeText(area, text);
}

/** Text committed at once (an input method, dictation, automation): the same slow path as a paste. */
function onBeforeInput(event: InputEvent): void {
  const area = event.currentTarget;
  if (event.defaultPrevented || !(area instanceof HTMLTextAreaElement) || !event.cancelable) return;
  if (event.inputType !== 'insertText' && event.inputType !== 'insertReplacementText' && event.inputType !== 'insertFromPaste') return;
  const text = event.data ?? event.dataTransfer?.getData('text/plain') ?? '';
  if (text.length < LARGE_INSERT) return;
  event.preventDefault();
  insertLargeText(area, text);
}

/** Makes large pastes and insertions into the text box behind `ref` take one step (see `insertLargeText`). */
export function useLargeInsert(ref: RefObject<HTMLTextAreaElement | null>): void {
  useEffect(() => {
    const area = ref.current;
    if (!area) return;
    area.addEventListener('paste', onPaste);
    area.addEventListener('beforeinput', onBeforeInput);
    return () => {
      area.removeEventListener('paste', onPaste);
      area.removeEventListener('beforeinput', onBeforeInput);
    };
  }, [ref]);
}
