/**
 * Unsent text, one draft per conversation (and one for "New chat"), kept in
 * this browser's localStorage so it survives a reload and never follows the
 * person into another conversation.
 */

const prefix = 'parlance-draft:';

const keyOf = (conversationId: string | null): string => `${prefix}${conversationId ?? 'new'}`;

export function readDraft(conversationId: string | null): string {
  try {
    return window.localStorage.getItem(keyOf(conversationId)) ?? '';
  } catch {
    return '';
  }
}

export function writeDraft(conversationId: string | null, text: string): void {
  try {
    if (text.trim() === '') window.localStorage.removeItem(keyOf(conversationId));
    else window.localStorage.setItem(keyOf(conversationId), text);
  } catch {
    // Storage full or refused (private mode): the draft lives as long as the page.
  }
}
