import type { MessageAttachment } from '../../../src/protocol/conversations.js';

/**
 * The files attached to an unsent message, one set per conversation (and one for "New chat"), kept in this
 * browser so they survive a reload as the text draft does (`state/drafts.ts`). IndexedDB, not localStorage: an
 * image or a PDF's text is megabytes, past localStorage's few. Where storage is refused (private mode, quota),
 * the files live as long as the page.
 */

const DATABASE = 'parlance-drafts';
const STORE = 'files';

const keyOf = (conversationId: string | null): string => conversationId ?? 'new';

let opened: Promise<IDBDatabase> | undefined;

function database(): Promise<IDBDatabase> {
  opened ??= new Promise<IDBDatabase>((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB refused'));
  });
  // A refusal is not kept: the next call tries again.
  opened.catch(() => (opened = undefined));
  return opened;
}

function settled<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB request failed'));
  });
}

/** The draft files stored for a conversation; none when nothing is stored or storage cannot be read. */
export async function readDraftFiles(conversationId: string | null): Promise<readonly MessageAttachment[]> {
  try {
    const db = await database();
    const stored: unknown = await settled(db.transaction(STORE, 'readonly').objectStore(STORE).get(keyOf(conversationId)));
    return Array.isArray(stored) ? (stored as MessageAttachment[]) : [];
  } catch {
    return [];
  }
}

/** Stores a conversation's draft files (none: forgets them). */
export async function writeDraftFiles(conversationId: string | null, files: readonly MessageAttachment[]): Promise<void> {
  try {
    const db = await database();
    const store = db.transaction(STORE, 'readwrite').objectStore(STORE);
    if (files.length === 0) await settled(store.delete(keyOf(conversationId)));
    else await settled(store.put([...files], keyOf(conversationId)));
  } catch {
    // Refused or full: the files stay on the page until it is left.
  }
}
