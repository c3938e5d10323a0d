import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent } from 'react';
import type { ConversationRecord } from '../../../src/protocol/conversations.js';
import { store, useAppState } from '../state/store.js';
import { Icon } from './icons.js';
import { SearchResults } from './SearchResults.js';

/** `onDone(true)` when closed from the keyboard (focus then goes back to the Rename button), false on a blur. */
function RenameForm({ conversation, onDone }: { readonly conversation: ConversationRecord; readonly onDone: (fromKeyboard: boolean) => void }) {
  const [title, setTitle] = useState(conversation.title);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);
  const closed = useRef(false);
  const save = (fromKeyboard: boolean): void => {
    if (closed.current) return; // the blur of the box going away after Enter
    closed.current = true;
    onDone(fromKeyboard);
    if (title.trim() && title !== conversation.title) void store.rename(conversation.id, title);
  };
  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>): void => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      closed.current = true;
      onDone(true);
    }
  };
  return (
    <form
      className="rename-form"
      onSubmit={(event) => {
        event.preventDefault();
        save(true);
      }}
    >
      <label className="visually-hidden" htmlFor={`rename-${conversation.id}`}>
        New title
      </label>
      <input id={`rename-${conversation.id}`} ref={input} value={title} maxLength={200} onChange={(event) => setTitle(event.target.value)} onKeyDown={onKeyDown} onBlur={() => save(false)} />
    </form>
  );
}

function Item({ conversation, current, onOpen }: { readonly conversation: ConversationRecord; readonly current: boolean; readonly onOpen: () => void }) {
  const [renaming, setRenaming] = useState(false);
  const renameButton = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);
  useEffect(() => {
    // Back from the rename box by Esc or Enter: focus returns to the button that opened it.
    if (!renaming && refocus.current) renameButton.current?.focus();
    refocus.current = false;
  }, [renaming]);
  const href = `/c/${encodeURIComponent(conversation.id)}`;
  const open = (event: MouseEvent<HTMLAnchorElement>): void => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return; // new tab etc.: the browser's
    event.preventDefault();
    store.navigate(conversation.id);
    onOpen();
  };
  return (
    <li className={current ? 'conversation current' : 'conversation'} data-conversation-id={conversation.id}>
      {renaming ? (
        <RenameForm
          conversation={conversation}
          onDone={(fromKeyboard) => {
            refocus.current = fromKeyboard;
            setRenaming(false);
          }}
        />
      ) : (
        <>
          <a href={href} onClick={open} aria-current={current ? 'page' : undefined} title={conversation.title}>
            {conversation.title}
          </a>
          <span className="item-actions">
            <button ref={renameButton} type="button" className="icon-button small" aria-label={`Rename “${conversation.title}”`} title="Rename" onClick={() => setRenaming(true)}>
              <Icon name="edit" />
            </button>
            <button type="button" className="icon-button small" aria-label={`Delete “${conversation.title}”`} title="Delete" onClick={() => store.remove(conversation.id)}>
              <Icon name="trash" />
            </button>
          </span>
        </>
      )}
    </li>
  );
}

/** Imports a conversation export file (JSON, as the export menu saves it) and opens it. */
function ImportButton() {
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <button type="button" className="button small import-button" onClick={() => input.current?.click()}>
        <Icon name="upload" /> Import a conversation
      </button>
      <input
        ref={input}
        type="file"
        accept="application/json,.json"
        className="visually-hidden"
        tabIndex={-1}
        aria-label="Conversation file to import"
        onChange={(event) => {
          const file = event.target.files?.[0];
          event.target.value = '';
          if (file) void store.importFile(file);
        }}
      />
    </>
  );
}

/** Conversations, newest first: a new one, search by title, open, rename, delete (with undo). */
export function Sidebar({ onNavigate }: { readonly onNavigate: () => void }) {
  const conversations = useAppState((state) => state.conversations);
  const hidden = useAppState((state) => state.hidden);
  const currentId = useAppState((state) => state.currentId);
  const listState = useAppState((state) => state.listState);
  const listError = useAppState((state) => state.listError);
  const nextCursor = useAppState((state) => state.nextCursor);
  const [query, setQuery] = useState('');

  const shown = useMemo(() => {
    const needle = query.trim().toLocaleLowerCase();
    return conversations.filter((conversation) => !hidden.has(conversation.id) && (needle === '' || conversation.title.toLocaleLowerCase().includes(needle)));
  }, [conversations, hidden, query]);

  // The API has no title search: while searching, load the remaining pages so every title is looked at.
  useEffect(() => {
    if (query.trim() && nextCursor) void store.loadMore();
  }, [query, nextCursor]);

  return (
    <nav className="sidebar" aria-label="Conversations">
      <div className="sidebar-top">
        <button
          type="button"
          className="button primary new-chat"
          onClick={() => {
            store.navigate(null);
            onNavigate();
          }}
        >
          <Icon name="plus" /> New chat
        </button>
        <div className="search">
          <Icon name="search" />
          <label htmlFor="conversation-search" className="visually-hidden">
            Search conversations by title
          </label>
          <input id="conversation-search" type="search" aria-keyshortcuts="Control+K Meta+K" placeholder="Search" value={query} onChange={(event) => setQuery(event.target.value)} />
        </div>
      </div>
      {listState === 'error' ? (
        <div className="error-box small" role="alert">
          <p>Could not load conversations. {listError}</p>
          <button type="button" className="button small" onClick={() => void store.loadList()}>
            Retry
          </button>
        </div>
      ) : null}
      {listState === 'loading' && conversations.length === 0 ? <p className="muted sidebar-note">Loading…</p> : null}
      {listState === 'ready' && shown.length === 0 ? <p className="muted sidebar-note">{query.trim() ? 'No conversation has that in its title.' : 'No conversations yet.'}</p> : null}
      <SearchResults query={query} onOpen={onNavigate} />
      <ul className="conversation-list">
        {shown.map((conversation) => (
          <Item key={conversation.id} conversation={conversation} current={conversation.id === currentId} onOpen={onNavigate} />
        ))}
      </ul>
      <ImportButton />
      {nextCursor && !query.trim() ? (
        <button type="button" className="button small load-more" onClick={() => void store.loadMore()}>
          Load older conversations
        </button>
      ) : null}
    </nav>
  );
}
