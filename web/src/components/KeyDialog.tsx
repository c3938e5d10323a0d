import { useEffect, useRef, useState } from 'react';
import { store, useAppState } from '../state/store.js';

/** Asks for the API key when the server answers 401 (a server run with `--api-key`). */
export function KeyDialog() {
  const needKey = useAppState((state) => state.needKey);
  const dialog = useRef<HTMLDialogElement>(null);
  const [key, setKey] = useState('');
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (needKey && !element.open) element.showModal();
    else if (!needKey && element.open) element.close();
  }, [needKey]);
  return (
    <dialog ref={dialog} className="settings-dialog" aria-labelledby="key-title" onCancel={(event) => event.preventDefault()}>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (key.trim()) store.useApiKey(key);
          setKey('');
        }}
      >
        <h2 id="key-title">This server needs an API key</h2>
        <p className="muted">It is kept in this browser only and sent with each request.</p>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="current-password" value={key} onChange={(event) => setKey(event.target.value)} />
        <div className="dialog-actions">
          <button type="submit" className="button primary" disabled={!key.trim()}>
            Use this key
          </button>
        </div>
      </form>
    </dialog>
  );
}
