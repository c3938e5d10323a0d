import { useEffect, useRef, useState, useSyncExternalStore, type KeyboardEvent } from 'react';
import type { MessageRecord } from '../../../src/protocol/conversations.js';
import { MessageFiles } from '../attachments/ComposerFiles.js';
import { publicMessage } from '../api/http.js';
import { copyText } from '../clipboard.js';
import { store, useAppState } from '../state/store.js';
import { siblingsOf } from '../state/tree.js';
import { Icon } from './icons.js';
import { useLargeInsert } from './large-insert.js';
import { Markdown } from './Markdown.js';
import { ReplyParts } from './ReplyParts.js';

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Time to first token and tokens per second: from the stored timings once done, measured live while streaming. */
function Stats({ record, streaming }: { readonly record: MessageRecord; readonly streaming: boolean }) {
  const live = useLiveStats(record.id, streaming);
  if (streaming) {
    if (!live) return null;
    return (
      <span className="stats" data-testid="live-stats">
        {/* Text arrives as the server stores it, a few times a second: a count of arrivals is not a token count. */}
        {live.resumed ? 'streaming…' : live.ttft === null ? 'waiting for the first token…' : `first text after ${formatMs(live.ttft)} · streaming…`}
        {live.reconnecting > 0 ? ' · reconnecting…' : ''}
      </span>
    );
  }
  const timings = record.timings;
  if (!timings) return null;
  const tokens = record.usage?.completionTokens ?? null;
  const generating = timings.firstTokenMs === null ? null : timings.totalMs - timings.firstTokenMs;
  const rate = tokens !== null && generating !== null && generating > 0 && tokens > 1 ? ((tokens - 1) * 1000) / generating : null;
  const parts = [
    timings.firstTokenMs === null ? null : `first token ${formatMs(timings.firstTokenMs)}`,
    rate === null ? null : `${rate.toFixed(1)} tokens/s`,
    tokens === null ? null : `${tokens} tokens`,
    record.model,
  ].filter((part): part is string => part !== null);
  return (
    <span className="stats" data-testid="stats" title="Time to first token is measured by the server from when the model took the request">
      {parts.join(' · ')}
    </span>
  );
}

interface LiveStats {
  readonly resumed: boolean;
  readonly ttft: number | null;
  readonly reconnecting: number;
}

function useLiveStats(messageId: string, streaming: boolean): LiveStats | null {
  const cache = useRef<LiveStats | null>(null);
  return useSyncExternalStore(
    (listener) => {
      if (!streaming) return () => undefined;
      // A few updates a second are plenty for a counter, and keep React out of the per-frame work.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const unsubscribe = store.live.subscribe(messageId, () => {
        timer ??= setTimeout(() => {
          timer = undefined;
          listener();
        }, 250);
      });
      return () => {
        unsubscribe();
        if (timer !== undefined) clearTimeout(timer);
      };
    },
    () => {
      const live = store.live.get(messageId);
      if (!live) return (cache.current = null);
      const ttft = live.firstTextAt === null ? null : live.firstTextAt - live.sentAt;
      const previous = cache.current;
      if (previous && previous.ttft === ttft && previous.reconnecting === live.reconnecting) return previous;
      return (cache.current = { resumed: live.resumed, ttft, reconnecting: live.reconnecting });
    },
  );
}

/** Characters from which a message's text is shown in parts (see `UserText`), and about how long each part is. */
const LONG_MESSAGE = 4000;
const PART = 2000;

/**
 * `text` cut at a newline about every PART characters, the newline left out: each part is a block, and the
 * break between blocks is that newline, on screen and in a copied selection (kept in the part as well, it
 * would be copied twice). Joined with newlines, the parts are exactly `text`.
 */
function partsOf(text: string): string[] {
  const parts: string[] = [];
  let start = 0;
  while (text.length - start > PART) {
    const cut = text.indexOf('\n', start + PART);
    if (cut < 0) break;
    parts.push(text.slice(start, cut));
    start = cut + 1;
  }
  parts.push(text.slice(start));
  return parts;
}

/**
 * What the person wrote, as written. A long text (a pasted document) is shown in parts that the browser lays
 * out and paints only near the screen (content-visibility), at its full width: laid out whole, and sized to
 * fit its widest line, a 20 KB message cost the frame that showed it (sending it) 150 ms at 4x CPU throttling.
 */
function UserText({ text }: { readonly text: string }) {
  if (text.length < LONG_MESSAGE) return <div className="user-text">{text}</div>;
  return (
    <div className="user-text long">
      {partsOf(text).map((part, index) => (
        // About as tall as its lines, until it is first laid out (then its real height is remembered).
        <span key={index} className="user-part" style={{ containIntrinsicSize: `auto ${Math.ceil((part.split('\n').length + part.length / 90) * 1.5)}em` }}>
          {part}
        </span>
      ))}
    </div>
  );
}

/** Where a cut reply ends, in words a reader can check against what they saw. */
function cutAt(text: string): string {
  const words = text.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return 'Nothing had been written yet.';
  const last = words.slice(-3).join(' ');
  return `It ends after ${words.length} ${words.length === 1 ? 'word' : 'words'}, at “${last.length > 60 ? `…${last.slice(-60)}` : last}”.`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

/** When a message was written: the time today, the date too before that; the full date on hover. */
function Timestamp({ at }: { readonly at: number }) {
  const date = new Date(at);
  const today = new Date().toDateString() === date.toDateString();
  return (
    <time className="timestamp" dateTime={date.toISOString()} title={fullFormat.format(date)}>
      {(today ? timeFormat : dateTimeFormat).format(date)}
    </time>
  );
}

function BranchSwitcher({ record }: { readonly record: MessageRecord }) {
  const messages = useAppState((state) => state.tree?.messages);
  const busy = useAppState((state) => store.busy(state));
  if (!messages) return null;
  const siblings = siblingsOf(messages, record);
  if (siblings.length < 2) return null;
  const index = siblings.findIndex((sibling) => sibling.id === record.id);
  const go = (step: number): void => {
    const target = siblings[index + step];
    if (target) void store.switchBranch(target.id);
  };
  return (
    <span className="branches" role="group" aria-label="Versions of this message">
      <button type="button" className="icon-button small" onClick={() => go(-1)} disabled={index <= 0 || busy} aria-label="Previous version">
        <Icon name="left" />
      </button>
      <span className="branch-count" aria-live="polite">
        {index + 1} / {siblings.length}
      </span>
      <button type="button" className="icon-button small" onClick={() => go(1)} disabled={index >= siblings.length - 1 || busy} aria-label="Next version">
        <Icon name="right" />
      </button>
    </span>
  );
}

function CopyButton({ text, label }: { readonly text: () => string; readonly label: string }) {
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) return;
    const timer = setTimeout(() => setCopied(false), 1500);
    return () => clearTimeout(timer);
  }, [copied]);
  return (
    <button type="button" className="icon-button small" aria-label={label} title={copied ? 'Copied' : label} onClick={() => void copyText(text()).then(setCopied)}>
      <Icon name={copied ? 'check' : 'copy'} />
      <span className="button-text">{copied ? 'Copied' : 'Copy'}</span>
    </button>
  );
}

function EditForm({ record, onDone }: { readonly record: MessageRecord; readonly onDone: () => void }) {
  const [text, setText] = useState(record.content);
  const area = useRef<HTMLTextAreaElement>(null);
  useLargeInsert(area);
  useEffect(() => {
    const element = area.current;
    if (!element) return;
    element.focus();
    element.setSelectionRange(element.value.length, element.value.length);
  }, []);
  useEffect(() => {
    // As tall as the text (a long message wraps to many lines), up to most of the screen (set through the CSSOM).
    const element = area.current;
    if (!element) return;
    element.style.height = 'auto';
    element.style.height = `${Math.min(element.scrollHeight + 2, Math.max(160, window.innerHeight * 0.6))}px`;
  }, [text]);
  const submit = (): void => {
    if (!text.trim()) return;
    onDone();
    void store.editAndResend(record, text);
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>): void => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      onDone();
    }
  };
  return (
    <form
      className="edit-form"
      onSubmit={(event) => {
        event.preventDefault();
        submit();
      }}
    >
      <label className="visually-hidden" htmlFor={`edit-${record.id}`}>
        Edit your message
      </label>
      <textarea id={`edit-${record.id}`} ref={area} value={text} onChange={(event) => setText(event.target.value)} onKeyDown={onKeyDown} rows={2} />
      <div className="edit-actions">
        <button type="button" className="button" onClick={onDone}>
          Cancel
        </button>
        <button type="submit" className="button primary" disabled={!text.trim()}>
          Send as a new version
        </button>
      </div>
    </form>
  );
}

export function MessageView({ record }: { readonly record: MessageRecord }) {
  const streaming = useAppState((state) => state.streaming.has(record.id));
  const lost = useAppState((state) => state.lost.get(record.id));
  const busy = useAppState((state) => store.busy(state));
  const [editing, setEditing] = useState(false);
  const isUser = record.role === 'user';
  const textNow = (): string => store.live.get(record.id)?.text ?? record.content;
  const active = streaming || record.status === 'streaming';

  return (
    <article className={`message ${isUser ? 'from-user' : 'from-assistant'}`} data-role={record.role} data-status={record.status} data-message-id={record.id} aria-busy={active}>
      <h2 className="visually-hidden">{isUser ? 'You said' : 'Parlance replied'}</h2>
      {isUser ? (
        editing ? (
          <EditForm record={record} onDone={() => setEditing(false)} />
        ) : (
          <>
            <MessageFiles files={record.attachments} />
            {record.content === '' && record.attachments.length > 0 ? null : <UserText text={record.content} />}
          </>
        )
      ) : (
        <div className="assistant-body">
          <ReplyParts record={record} streaming={active && !lost} />
          <Markdown text={record.content} streaming={active && !lost} messageId={record.id} />
        </div>
      )}
      {record.status === 'stopped' ? <p className="note">Stopped.</p> : null}
      {record.status === 'complete' && record.finishReason === 'length' && !active ? (
        <div className="note-box" role="status">
          <p>
            <strong>Cut at the length limit.</strong> The reply reached its maximum number of tokens before it was done.
          </p>
          <button type="button" className="button small" onClick={() => void store.continueReply(record)} disabled={busy}>
            Continue
          </button>
        </div>
      ) : null}
      {record.status === 'failed' && record.error?.code === 'server_stopped' ? (
        <div className="note-box" role="status">
          <p>
            <strong>Cut short.</strong> {record.error.message} {cutAt(record.content)}
          </p>
          <button type="button" className="button small" onClick={() => void store.regenerate(record)} disabled={busy}>
            <Icon name="refresh" /> Regenerate
          </button>
        </div>
      ) : record.status === 'failed' ? (
        <div className="error-box" role="alert">
          <p>
            <strong>The reply failed.</strong> {publicMessage(record.error?.message ?? '')}
          </p>
          <button type="button" className="button" onClick={() => void store.regenerate(record)} disabled={busy}>
            <Icon name="refresh" /> Retry
          </button>
        </div>
      ) : null}
      {lost !== undefined ? (
        <div className="error-box" role="alert">
          <p>
            <strong>Lost the connection to this reply.</strong> {lost}
          </p>
          <button type="button" className="button" onClick={() => store.retryLost(record)}>
            <Icon name="refresh" /> Reconnect
          </button>
        </div>
      ) : null}
      {editing ? null : (
        <footer className="message-actions">
          <Timestamp at={record.createdAt} />
          <BranchSwitcher record={record} />
          {!active ? <CopyButton text={textNow} label={isUser ? 'Copy your message' : 'Copy the reply'} /> : null}
          {isUser && !busy ? (
            <button type="button" className="icon-button small" onClick={() => setEditing(true)} aria-label="Edit and resend">
              <Icon name="edit" />
              <span className="button-text">Edit</span>
            </button>
          ) : null}
          {!isUser && !active && !busy ? (
            <button type="button" className="icon-button small" onClick={() => void store.regenerate(record)} aria-label="Regenerate the reply">
              <Icon name="refresh" />
              <span className="button-text">Regenerate</span>
            </button>
          ) : null}
          {!isUser ? <Stats record={record} streaming={active} /> : null}
        </footer>
      )}
    </article>
  );
}

/** The optimistic turn shown between sending and the server's `start`. */
export function PendingView({ content }: { readonly content: string | null }) {
  return (
    <>
      {content !== null ? (
        <article className="message from-user pending" data-role="user">
          <h2 className="visually-hidden">You said</h2>
          <UserText text={content} />
        </article>
      ) : null}
      <article className="message from-assistant pending" data-role="assistant" aria-busy="true">
        <h2 className="visually-hidden">Parlance is replying</h2>
        <span className="typing" aria-label="Waiting for the reply" />
      </article>
    </>
  );
}
