import { useEffect, type RefObject } from 'react';

/** Characters inserted at once from which a text box inserts them itself instead of through the browser's editing. */
export const LARGE_INSERT = 2000;

/** A text box's text and selection at one point of its history. */
interface Snapshot {
  readonly value: string;
  readonly start: number;
  readonly end: number;
}

/** How many steps back a text box keeps once it keeps its own history (each a copy of the text). */
const HISTORY_STEPS = 100;

/**
 * The undo history of a text box that took a large insertion. Chromium's own history cannot hold it: text set by
 * script (`setRangeText`, or `value`) is not recorded, and the steps recorded before it then undo at the wrong
 * places (Ctrl+Z did nothing, Ctrl+Shift+Z inserted old text twice). So from its first large insertion on, the box
 * keeps its history here, as whole-text snapshots: undo and redo restore one exactly, and typing in one run
 * (characters inserted one after another at the caret) is one step, as the browser's own.
 */
class TextHistory {
  private readonly undos: Snapshot[] = [];
  private readonly redos: Snapshot[] = [];
  /** The text as this history last left it or saw it changed by the person; anything else was set by script. */
  private known = '';
  /** The last change's kind and where its caret ended, to join a run of typing into one step. */
  private lastType = '';
  private lastCaret = -1;
  /** The box as it was just before the change now under way (taken on `beforeinput`). */
  private before: Snapshot | null = null;

  constructor(private readonly area: HTMLTextAreaElement) {}

  /** Text set by script since (a sent message cleared, another conversation's draft): the steps kept no longer apply. */
  private checkKnown(): void {
    if (this.area.value === this.known) return;
    this.undos.length = 0;
    this.redos.length = 0;
    this.known = this.area.value;
    this.lastType = '';
  }

  private push(snapshot: Snapshot): void {
    this.undos.push(snapshot);
    if (this.undos.length > HISTORY_STEPS) this.undos.shift();
    this.redos.length = 0;
  }

  /** Inserts `text` at the selection in one step (see `insertLargeText`), as one undoable step. */
  insertLarge(text: string): void {
    this.checkKnown();
    this.push(snapshot(this.area));
    insertLargeText(this.area, text);
    this.settle('large');
  }

  /** A change the browser is about to make (typing, deleting, a small paste): remembers the box before it. */
  willChange(): void {
    this.checkKnown();
    this.before = snapshot(this.area);
  }

  /** The browser made the change announced by `willChange`. */
  changed(inputType: string): void {
    const before = this.before;
    this.before = null;
    if (before === null) return;
    const typingOn = inputType === 'insertText' && this.lastType === 'insertText' && before.start === before.end && before.start === this.lastCaret;
    if (!typingOn) this.push(before);
    else this.redos.length = 0;
    this.settle(inputType);
  }

  undo(): void {
    this.step(this.undos, this.redos);
  }

  redo(): void {
    this.step(this.redos, this.undos);
  }

  /** Goes back (or forward) one step: the text now is kept on the other stack, so the step can be reversed. */
  private step(from: Snapshot[], to: Snapshot[]): void {
    this.checkKnown();
    const target = from.pop();
    if (target === undefined) return;
    to.push(snapshot(this.area));
    this.restore(target);
  }

  private restore(target: Snapshot): void {
    this.area.setRangeText(target.value, 0, this.area.value.length);
    this.area.setSelectionRange(target.start, target.end);
    // A plain `Event`, which `onInput` below leaves alone: React's `onChange` hears it, this history does not.
    this.area.dispatchEvent(new Event('input', { bubbles: true }));
    this.settle('history');
  }

  private settle(type: string): void {
    this.known = this.area.value;
    this.lastType = type;
    this.lastCaret = this.area.selectionEnd;
  }
}

const snapshot = (area: HTMLTextAreaElement): Snapshot => ({ value: area.value, start: area.selectionStart, end: area.selectionEnd });

/** Text boxes that keep their own history: those that took a large insertion. */
const histories = new WeakMap<HTMLTextAreaElement, TextHistory>();

function historyOf(area: HTMLTextAreaElement): TextHistory {
  let history = histories.get(area);
  if (history === undefined) {
    history = new TextHistory(area);
    histories.set(area, history);
  }
  return history;
}

/**
 * Chromium inserts pasted or committed text into a `<textarea>` one line at a
 * time, laying out the whole box after each (a 20 KB paste of 500 lines
 * blocked the page for 1–2 s, 10 s at 4x CPU throttling). Setting the text
 * with `setRangeText` does it in one step. Small insertions keep the native
 * path; a large one is inserted here, and undone with Ctrl+Z through the box's
 * own history (`TextHistory`); an `input` event tells React's `onChange` as
 * typing would.
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
  historyOf(area).insertLarge(text);
}

/** Text committed at once (an input method, dictation, automation): the same slow path as a paste. */
function onBeforeInput(event: InputEvent): void {
  const area = event.currentTarget;
  if (event.defaultPrevented || !(area instanceof HTMLTextAreaElement)) return;
  const history = histories.get(area);
  if (event.inputType === 'historyUndo' || event.inputType === 'historyRedo') {
    // Undo from elsewhere than the keyboard (the context menu): the box's own history, when it keeps one.
    if (history === undefined) return;
    event.preventDefault();
    if (event.inputType === 'historyUndo') history.undo();
    else history.redo();
    return;
  }
  const large = event.cancelable && (event.inputType === 'insertText' || event.inputType === 'insertReplacementText' || event.inputType === 'insertFromPaste');
  const text = large ? (event.data ?? event.dataTransfer?.getData('text/plain') ?? '') : '';
  if (text.length >= LARGE_INSERT) {
    event.preventDefault();
    historyOf(area).insertLarge(text);
    return;
  }
  history?.willChange();
}

function onInput(event: Event): void {
  const area = event.currentTarget;
  // Our own input events are plain `Event`s; the browser's are `InputEvent`s.
  if (!(area instanceof HTMLTextAreaElement) || !(event instanceof InputEvent)) return;
  histories.get(area)?.changed(event.inputType);
}

/**
 * Ctrl+Z (⌘Z) and Ctrl+Shift+Z or Ctrl+Y (⌘⇧Z) in a box that keeps its own history. Handled on the key, not only
 * on `beforeinput`: Chromium sends no `historyUndo` when its own history is empty, which it can be after a paste.
 */
function onKeyDown(event: KeyboardEvent): void {
  const area = event.currentTarget;
  if (event.defaultPrevented || !(area instanceof HTMLTextAreaElement) || event.altKey || !(event.ctrlKey || event.metaKey)) return;
  const history = histories.get(area);
  if (history === undefined) return;
  const key = event.key.toLowerCase();
  if (key === 'z' && !event.shiftKey) history.undo();
  else if ((key === 'z' && event.shiftKey) || (key === 'y' && !event.shiftKey)) history.redo();
  else return;
  event.preventDefault();
}

/** Makes large pastes and insertions into the text box behind `ref` take one step, and undoable (see `insertLargeText`). */
export function useLargeInsert(ref: RefObject<HTMLTextAreaElement | null>): void {
  useEffect(() => {
    const area = ref.current;
    if (!area) return;
    area.addEventListener('paste', onPaste);
    area.addEventListener('beforeinput', onBeforeInput);
    area.addEventListener('input', onInput);
    area.addEventListener('keydown', onKeyDown);
    return () => {
      area.removeEventListener('paste', onPaste);
      area.removeEventListener('beforeinput', onBeforeInput);
      area.removeEventListener('input', onInput);
      area.removeEventListener('keydown', onKeyDown);
    };
  }, [ref]);
}
