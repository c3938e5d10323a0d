import { useEffect, useRef, useState } from 'react';
import { store } from '../state/store.js';
import { ChatView } from './ChatView.js';
import { KeyDialog } from './KeyDialog.js';
import { ShortcutsDialog } from './ShortcutsDialog.js';
import { Sidebar } from './Sidebar.js';
import { Toasts } from './Toasts.js';

/** Whether a key press is typing into a field (where `?` is a character, not a shortcut). */
function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || target.matches('input, textarea, select'));
}

export function App() {
  const [menuOpen, setMenuOpen] = useState(false);
  const [shortcutsOpen, setShortcutsOpen] = useState(false);
  const wasOpen = useRef(false);

  // The phone drawer is modal: focus moves into it (the page behind is inert) and back to its button after.
  useEffect(() => {
    if (menuOpen) document.querySelector<HTMLElement>('.sidebar .new-chat')?.focus();
    else if (wasOpen.current) document.querySelector<HTMLElement>('.menu-button')?.focus();
    wasOpen.current = menuOpen;
  }, [menuOpen]);

  useEffect(() => {
    const onKeyDown = (event: KeyboardEvent): void => {
      if (event.defaultPrevented) return;
      if (event.key === 'Escape') {
        if (document.querySelector('dialog[open]')) return;
        if (menuOpen) {
          setMenuOpen(false);
          return;
        }
        if (store.busy()) {
          event.preventDefault();
          void store.stop();
        }
      } else if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === 'o') {
        event.preventDefault();
        store.navigate(null);
      } else if ((event.ctrlKey || event.metaKey) && !event.shiftKey && !event.altKey && event.key.toLowerCase() === 'k') {
        event.preventDefault();
        const search = document.getElementById('conversation-search');
        if (search && window.matchMedia('(max-width: 760px)').matches) setMenuOpen(true);
        search?.focus();
      } else if (event.key === '?' && !event.ctrlKey && !event.metaKey && !event.altKey && !isTyping(event.target) && !document.querySelector('dialog[open]')) {
        event.preventDefault();
        setShortcutsOpen(true);
      }
    };
    document.addEventListener('keydown', onKeyDown);
    return () => document.removeEventListener('keydown', onKeyDown);
  }, [menuOpen]);

  return (
    <div className={menuOpen ? 'app menu-open' : 'app'}>
      <a className="skip-link" href="#composer-input" inert={menuOpen}>
        Skip to the message box
      </a>
      <Sidebar onNavigate={() => setMenuOpen(false)} />
      <div className="scrim" onClick={() => setMenuOpen(false)} aria-hidden="true" />
      <ChatView onMenu={() => setMenuOpen(true)} inert={menuOpen} />
      <Toasts />
      <KeyDialog />
      <ShortcutsDialog open={shortcutsOpen} onClose={() => setShortcutsOpen(false)} />
    </div>
  );
}
