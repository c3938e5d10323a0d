import { useEffect, useState, type MouseEvent, type ReactNode } from 'react';
import type { SearchHit, SearchSnippet } from '../../../src/protocol/conversations.js';
import { searchMessages } from '../api/conversations.js';
import { isAbort } from '../api/http.js';
import { store, useAppState } from '../state/store.js';

/** Typing pauses this long before a search is sent: one request per pause, not per key. */
const debounceMs = 250;
/** A freshly opened conversation gets this long to show the message before the page stops looking for it. */
const findMessageMs = 3000;

/** The snippet as text nodes with `<mark>` around the matched words: offsets from the server, never its markup. */
function Snippet({ snippet }: { readonly snippet: SearchSnippet }) {
  const parts: ReactNode[] = [];
  let at = 0;
  for (const [start, end] of snippet.highlights) {
    if (start < at || end > snippet.text.length) continue;
    parts.push(snippet.text.slice(at, start), <mark key={start}>{snippet.text.slice(start, end)}</mark>);
    at = end;
  }
  parts.push(snippet.text.slice(at));
  return <span className="search-snippet">{parts}</span>;
}

/** Scrolls the message into view once the conversation shows it (it may be on a branch that is not shown: then nothing). */
function revealMessage(messageId: string): void {
  const until = Date.now() + findMessageMs;
  const look = (): void => {
    const element = document.querySelector(`[data-message-id="${CSS.escape(messageId)}"]`);
    if (element) element.scrollIntoView({ block: 'center' });
    else if (Date.now() < until) window.setTimeout(look, 100);
  };
  look();
}

function Hit({ hit, onOpen }: { readonly hit: SearchHit; readonly onOpen: () => void }) {
  const open = (event: MouseEvent<HTMLAnchorElement>): void => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return; // new tab etc.: the browser's
    event.preventDefault();
    store.navigate(hit.conversationId);
    onOpen();
    revealMessage(hit.messageId);
  };
  return (
    <li className="conversation search-hit" data-hit-message-id={hit.messageId}>
      <a href={`/c/${encodeURIComponent(hit.conversationId)}`} onClick={open} title={hit.conversationTitle} style={{ whiteSpace: 'normal' }}>
        <strong>{hit.conversationTitle}</strong> <span className="muted">{hit.role === 'user' ? 'you' : hit.role}</span>
        <br />
        <Snippet snippet={hit.snippet} />
      </a>
    </li>
  );
}

/**
 * Messages whose text matches the sidebar's query (two characters or more), above the title matches, at most
 * 60% of the sidebar's height so that those stay in reach. (Layout set inline: the stylesheet is the page's own.)
 */
export function SearchResults({ query, onOpen }: { readonly query: string; readonly onOpen: () => void }) {
  const [found, setHits] = useState<readonly SearchHit[] | undefined>(undefined);
  // A conversation deleted a moment ago (its undo still open) is gone from the page; its messages too.
  const hidden = useAppState((state) => state.hidden);
  const hits = found?.filter((hit) => !hidden.has(hit.conversationId));
  const [error, setError] = useState<string | undefined>(undefined);
  const text = query.trim().slice(0, 200);
  useEffect(() => {
    setHits(undefined);
    setError(undefined);
    if (text.length < 2) return undefined;
    const abort = new AbortController();
    const timer = window.setTimeout(() => {
      searchMessages(text, abort.signal).then(
        (page) => setHits(page.hits),
        (failure: unknown) => {
          if (!isAbort(failure)) setError(failure instanceof Error ? failure.message : 'The search failed.');
        },
      );
    }, debounceMs);
    return () => {
      window.clearTimeout(timer);
      abort.abort();
    };
  }, [text]);
  if (text.length < 2) return null;
  return (
    <section className="search-results" aria-label="Messages that match" aria-live="polite" style={{ flexShrink: 0, maxHeight: '60%', overflowY: 'auto' }}>
      <h2 className="muted sidebar-note">In messages</h2>
      {error !== undefined ? <p className="muted sidebar-note">{error}</p> : null}
      {hits === undefined && error === undefined ? <p className="muted sidebar-note">Searching…</p> : null}
      {hits !== undefined && hits.length === 0 ? <p className="muted sidebar-note">No message has that.</p> : null}
      {hits !== undefined && hits.length > 0 ? (
        <ul className="conversation-list">
          {hits.map((hit) => (
            <Hit key={hit.messageId} hit={hit} onOpen={onOpen} />
          ))}
        </ul>
      ) : null}
    </section>
  );
}
