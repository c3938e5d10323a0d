import { useEffect, useRef, useState } from 'react';
import { store, useAppState } from '../state/store.js';

/**
 * The API key dialog: opened by a 401 (a server run with `--api-key`; it cannot
 * be dismissed then), or from the settings to change the key. The key is kept
 * only once the server took it.
 */
export function KeyDialog() {
  const mode = useAppState((state) => state.keyDialog);
  const error = useAppState((state) => state.keyError);
  const dialog = useRef<HTMLDialogElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const [key, setKey] = useState('');
  const [checking, setChecking] = useState(false);
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (mode !== null && !element.open) element.showModal();
    else if (mode === null && element.open) element.close();
  }, [mode]);
  useEffect(() => {
    if (error !== null) input.current?.focus();
  }, [error]);
  const changing = mode === 'change';
  return (
    <dialog
      ref={dialog}
      className="settings-dialog"
      aria-labelledby="key-title"
      onCancel={(event) => {
        event.preventDefault();
        store.closeKeyDialog();
      }}
    >
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (!key.trim() || checking) return;
          setChecking(true);
          void store.useApiKey(key).finally(() => {
            setChecking(false);
            if (store.getState().keyDialog === null) setKey('');
          });
        }}
      >
        <h2 id="key-title">{changing ? 'Change the API key' : 'This server needs an API key'}</h2>
        <p className="muted">It is kept in this browser only and sent with each request.</p>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          ref={input}
          type="password"
          autoComplete="current-password"
          value={key}
          aria-invalid={error !== null}
          aria-describedby={error !== null ? 'api-key-error' : undefined}
          onChange={(event) => setKey(event.target.value)}
        />
        {error !== null ? (
          <p id="api-key-error" className="form-error" role="alert">
            {error}
          </p>
        ) : null}
        <div className="dialog-actions">
          {changing ? (
            <button type="button" className="button" onClick={() => store.closeKeyDialog()}>
              Cancel
            </button>
          ) : null}
          <button type="submit" className="button primary" disabled={!key.trim() || checking}>
            {checking ? 'Checking…' : 'Use this key'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
