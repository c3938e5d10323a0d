import { useEffect, useLayoutEffect, useRef, useState, type MouseEvent } from 'react';
import { downloadExport, exportUrl } from '../api/conversations.js';
import { hasApiKey } from '../api/http.js';
import type { MessageRecord } from '../../../src/protocol/conversations.js';
import { copyText } from '../clipboard.js';
import { store, useAppState } from '../state/store.js';
import { Composer } from './Composer.js';
import { Icon } from './icons.js';
import { MessageView, PendingView } from './MessageView.js';
import { SettingsDialog } from './SettingsDialog.js';
import { ModelLoading } from './ModelLoading.js';

function ModelPicker() {
  const models = useAppState((state) => state.models);
  const conversation = useAppState((state) => state.tree?.conversation ?? null);
  const draft = useAppState((state) => state.draft);
  const chosen = conversation ? conversation.model : draft.model;
  const value = chosen ?? '';
  return (
    <div className="model-picker">
      <label htmlFor="model-select" className="visually-hidden">
        Model
      </label>
      <select
        id="model-select"
        value={value}
        onChange={(event) => {
          const model = event.target.value || null;
          if (conversation) void store.updateCurrent({ model });
          else store.setDraft({ ...draft, model });
        }}
      >
        <option value="">Default model{models[0] ? ` (${models[0]})` : ''}</option>
        {models.map((model) => (
          <option key={model} value={model}>
            {model}
          </option>
        ))}
        {chosen && !models.includes(chosen) ? <option value={chosen}>{chosen} (unavailable)</option> : null}
      </select>
    </div>
  );
}

function ExportMenu({ id }: { readonly id: string }) {
  const [open, setOpen] = useState(false);
  /** A plain link cannot carry the API key: with one, the export is fetched and saved from a blob. */
  const exportWithKey = (event: MouseEvent<HTMLAnchorElement>, conversationId: string, format: 'json' | 'markdown'): void => {
    setOpen(false);
    if (!hasApiKey()) return;
    event.preventDefault();
    void downloadExport(conversationId, format).catch((error: unknown) => store.toast(error instanceof Error ? error.message : String(error)));
  };
  const box = useRef<HTMLDivElement>(null);
  const trigger = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (!open) return;
    const onDown = (event: PointerEvent): void => {
      if (box.current && !box.current.contains(event.target as Node)) setOpen(false);
    };
    const onKey = (event: KeyboardEvent): void => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        setOpen(false);
        trigger.current?.focus(); // not to <body> with the link that had it
      }
    };
    document.addEventListener('pointerdown', onDown);
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('pointerdown', onDown);
      document.removeEventListener('keydown', onKey, true);
    };
  }, [open]);
  return (
    <div className="menu" ref={box}>
      <button ref={trigger} type="button" className="icon-button" aria-label="Export the conversation" title="Export" aria-expanded={open} aria-controls="export-menu" onClick={() => setOpen(!open)}>
        <Icon name="download" />
      </button>
      {open ? (
        <div className="menu-items" id="export-menu">
          <a href={exportUrl(id, 'markdown')} download onClick={(event) => exportWithKey(event, id, 'markdown')}>
            Markdown (.md)
          </a>
          <a href={exportUrl(id, 'json')} download onClick={(event) => exportWithKey(event, id, 'json')}>
            JSON, every branch (.json)
          </a>
        </div>
      ) : null}
    </div>
  );
}

type Theme = 'system' | 'light' | 'dark';

function readTheme(): Theme {
  const stored = window.localStorage.getItem('parlance-theme');
  return stored === 'light' || stored === 'dark' ? stored : 'system';
}

export function applyStoredTheme(): void {
  const theme = readTheme();
  if (theme === 'system') delete document.documentElement.dataset['theme'];
  else document.documentElement.dataset['theme'] = theme;
}

function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(readTheme);
  const next: Record<Theme, Theme> = { system: 'light', light: 'dark', dark: 'system' };
  const label = { system: 'Theme: follows the system', light: 'Theme: light', dark: 'Theme: dark' }[theme];
  return (
    <button
      type="button"
      className="icon-button"
      aria-label={`${label}. Change theme`}
      title={label}
      onClick={() => {
        const value = next[theme];
        if (value === 'system') window.localStorage.removeItem('parlance-theme');
        else window.localStorage.setItem('parlance-theme', value);
        setTheme(value);
        applyStoredTheme();
      }}
    >
      <Icon name={theme === 'system' ? 'auto' : theme === 'light' ? 'sun' : 'moon'} />
    </button>
  );
}

const DISMISSED_KEY = 'parlance-dismissed-notices';

function readDismissed(): string[] {
  try {
    const value: unknown = JSON.parse(window.localStorage.getItem(DISMISSED_KEY) ?? '[]');
    return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  } catch {
    return [];
  }
}

/** The server's notices (demo mode, loading…); each can be dismissed, and stays dismissed in this browser. */
function Banner() {
  const notices = useAppState((state) => state.notices);
  const [dismissed, setDismissed] = useState<string[]>(readDismissed);
  const shown = notices.filter((notice) => !dismissed.includes(notice.message));
  if (shown.length === 0) return null;
  const text = shown.map((notice) => notice.message).join(' ');
  return (
    <div id="banner" className="banner" role="status">
      <span className="banner-text" title={text}>
        {text}
      </span>
      <button
        type="button"
        className="icon-button small"
        aria-label="Dismiss this notice"
        onClick={() => {
          const next = [...dismissed, ...shown.map((notice) => notice.message)].slice(-20);
          setDismissed(next);
          try {
            window.localStorage.setItem(DISMISSED_KEY, JSON.stringify(next));
          } catch {
            // Not stored: dismissed for this page load only.
          }
        }}
      >
        <Icon name="close" />
      </button>
    </div>
  );
}

/** While the server does not answer: what is going on, and that the page keeps trying. */
function ConnectionBanner() {
  const down = useAppState((state) => state.connection === 'down');
  if (!down) return null;
  return (
    <div className="banner connection" role="alert">
      <strong>Parlance cannot be reached.</strong> The server may be restarting; the page reconnects by itself when it answers. Nothing you see is lost.
    </div>
  );
}

function FailureBox() {
  const failure = useAppState((state) => state.failure);
  const currentId = useAppState((state) => state.currentId);
  if (!failure || (failure.conversationId !== null && failure.conversationId !== currentId)) return null;
  return (
    <div className="error-box failure" role="alert">
      <p>
        <strong>Not sent.</strong> {failure.message}
      </p>
      {failure.restore ? <blockquote className="unsent">{failure.restore}</blockquote> : null}
      <div className="error-actions">
        <button type="button" className="button primary" onClick={() => failure.retry()}>
          <Icon name="refresh" /> Retry
        </button>
        {failure.restore ? (
          <button type="button" className="button" onClick={() => store.editFailed()}>
            Edit
          </button>
        ) : null}
        <button type="button" className="button" onClick={() => store.dismissFailure()}>
          Dismiss
        </button>
      </div>
    </div>
  );
}

const examples = ['Explain recursion with a short Python example', 'Write a haiku about the sea', 'What is the quadratic formula?'];

function EmptyState() {
  return (
    <div className="empty">
      <h2>What would you like to talk about?</h2>
      <p className="muted">Replies stream from the model on this server. Enter sends, Shift+Enter adds a line.</p>
      <ul className="examples">
        {examples.map((example) => (
          <li key={example}>
            <button type="button" className="button example" onClick={() => void store.send(example)}>
              {example}
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** Copy buttons of code blocks live inside rendered Markdown: one delegated handler serves them all. */
function onCodeCopy(event: MouseEvent<HTMLElement>): void {
  const target = event.target as HTMLElement;
  const button = target.closest<HTMLButtonElement>('button[data-copy-code]');
  if (!button) return;
  const code = button.closest('.code-block')?.querySelector('code');
  void copyText(code?.textContent ?? '').then((ok) => {
    button.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => (button.textContent = 'Copy'), 1500);
  });
}

function Messages() {
  const tree = useAppState((state) => state.tree);
  const pending = useAppState((state) => state.pending);
  const scroller = useRef<HTMLDivElement>(null);
  const content = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const [away, setAway] = useState(false);
  const conversationId = tree?.conversation.id ?? null;

  // Follow the reply as it grows, unless the reader scrolled up. The scroller and its content are always
  // rendered (even before the conversation has loaded), so this is wired once, whatever arrives later.
  useLayoutEffect(() => {
    const element = scroller.current;
    const inner = content.current;
    if (!element || !inner) return;
    let lastTop = element.scrollTop;
    const onScroll = (): void => {
      const top = element.scrollTop;
      const movedUp = top < lastTop - 1;
      lastTop = top;
      const gap = element.scrollHeight - top - element.clientHeight;
      // Only a move up lets go of the end. The content can grow between following it and this event
      // (a chunk of a long reply rendering at its real height, not its placeholder's), which leaves a
      // gap with no one having scrolled: that must not stop the following.
      if (gap < 48) stick.current = true;
      else if (movedUp) stick.current = false;
      // Following a reply scrolls on every frame it grows: at the end, nothing more to measure.
      if (stick.current) {
        if (gap >= 48) element.scrollTop = element.scrollHeight;
        setAway(false);
        return;
      }
      // Offered only once the conversation's last line (the last reply's actions) is below the fold, so the
      // button, which floats at the bottom, never covers it.
      const rows = inner.querySelectorAll('.message-actions');
      const last = rows[rows.length - 1] ?? inner.lastElementChild;
      setAway(last !== null && last !== undefined && last.getBoundingClientRect().top >= element.getBoundingClientRect().bottom);
    };
    const observer = new ResizeObserver(() => {
      if (stick.current) element.scrollTop = element.scrollHeight;
    });
    observer.observe(inner);
    element.addEventListener('scroll', onScroll, { passive: true });
    return () => {
      observer.disconnect();
      element.removeEventListener('scroll', onScroll);
    };
  }, []);

  // Opening a conversation (a reload, another tab, the sidebar) lands at its end, as does sending.
  // In the next animation frame, before it paints: reading the height here, in React's commit, laid out the page
  // (a 20 KB message just sent included) inside the task that rendered it, and then the frame laid it out again.
  useLayoutEffect(() => {
    stick.current = true;
    setAway(false);
    const frame = requestAnimationFrame(() => {
      const element = scroller.current;
      if (element && stick.current) element.scrollTop = element.scrollHeight;
    });
    return () => cancelAnimationFrame(frame);
  }, [conversationId, pending]);

  let path: MessageRecord[] = [];
  let showPending = false;
  if (tree) {
    const index = new Map(tree.messages.map((message) => [message.id, message]));
    path = tree.activePath.map((id) => index.get(id)).filter((message) => message !== undefined);
    if (pending && pending.conversationId === tree.conversation.id && pending.parentId !== undefined) {
      const cut = pending.parentId === null ? 0 : path.findIndex((message) => message.id === pending.parentId) + 1;
      path = path.slice(0, cut);
    }
    showPending = pending !== null && pending.conversationId === tree.conversation.id;
  }

  return (
    <div className="messages-frame">
      <div className="messages" ref={scroller} onClick={onCodeCopy} role="log" aria-label="Messages" tabIndex={-1}>
        <div className="messages-inner" ref={content}>
          {tree && path.length === 0 && !showPending ? <EmptyState /> : null}
          {path.map((message) => (
            <MessageView key={message.id} record={message} />
          ))}
          {showPending && pending ? <PendingView content={pending.content} /> : null}
          {tree ? <FailureBox /> : null}
        </div>
      </div>
      {away ? (
        <button
          type="button"
          className="button small jump"
          onClick={() => {
            const element = scroller.current;
            if (element) element.scrollTo({ top: element.scrollHeight, behavior: 'smooth' });
          }}
        >
          Jump to the latest
        </button>
      ) : null}
    </div>
  );
}

export function ChatView({ onMenu, inert }: { readonly onMenu: () => void; readonly inert: boolean }) {
  const currentId = useAppState((state) => state.currentId);
  const treeState = useAppState((state) => state.treeState);
  const treeError = useAppState((state) => state.treeError);
  const title = useAppState((state) => state.tree?.conversation.title ?? null);
  const [settingsOpen, setSettingsOpen] = useState(false);

  useEffect(() => {
    if (currentId === null) document.title = 'Parlance';
  }, [currentId]);

  return (
    <main className="chat" id="main" inert={inert}>
      <header className="chat-header">
        <button type="button" className="icon-button menu-button" aria-label="Show conversations" onClick={onMenu}>
          <Icon name="menu" />
        </button>
        <h1 className="chat-title">{currentId === null ? 'New chat' : (title ?? '…')}</h1>
        <div className="header-tools">
          <ModelPicker />
          <button type="button" className="icon-button" aria-label="Conversation settings" title="Settings: system prompt, sampling, defaults, presets" onClick={() => setSettingsOpen(true)}>
            <Icon name="sliders" />
          </button>
          {currentId !== null && treeState === 'ready' ? <ExportMenu id={currentId} /> : null}
          <ThemeToggle />
          <button type="button" className="icon-button shortcuts-button" aria-label="Keyboard shortcuts" aria-keyshortcuts="?" title="Keyboard shortcuts (?)" onClick={() => document.dispatchEvent(new KeyboardEvent('keydown', { key: '?' }))}>
            <Icon name="keyboard" />
          </button>
        </div>
      </header>
      <ConnectionBanner />
      <Banner />
      <ModelLoading />
      {treeState === 'loading' && title === null ? <p className="muted center">Loading the conversation…</p> : null}
      {treeState === 'missing' ? (
        <div className="empty">
          <h2>This conversation does not exist.</h2>
          <p className="muted">It may have been deleted.</p>
          <button type="button" className="button primary" onClick={() => store.navigate(null)}>
            Start a new chat
          </button>
        </div>
      ) : null}
      {treeState === 'error' ? (
        <div className="error-box center" role="alert">
          <p>
            <strong>Could not load the conversation.</strong> {treeError}
          </p>
          <button type="button" className="button primary" onClick={() => currentId && void store.loadTree(currentId)}>
            <Icon name="refresh" /> Retry
          </button>
        </div>
      ) : null}
      {currentId === null ? (
        <div className="messages">
          <div className="messages-inner">
            <EmptyState />
            <FailureBox />
          </div>
        </div>
      ) : (
        <Messages />
      )}
      {treeState === 'missing' || treeState === 'error' ? null : <Composer />}
      <SettingsDialog open={settingsOpen} onClose={() => setSettingsOpen(false)} />
    </main>
  );
}
