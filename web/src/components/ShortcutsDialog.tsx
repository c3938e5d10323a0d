import { useEffect, useRef } from 'react';

const shortcuts: readonly (readonly [keys: readonly string[], what: string])[] = [
  [['Enter'], 'Send the message'],
  [['Shift', 'Enter'], 'New line in the message'],
  [['Esc'], 'Stop the reply; close a menu or dialog'],
  [['Ctrl', 'K'], 'Search conversations (⌘K on a Mac)'],
  [['Ctrl', 'Shift', 'O'], 'New chat (⌘⇧O on a Mac)'],
  [['?'], 'Show these shortcuts'],
];

/** The keyboard shortcuts, opened with `?` (outside a text box). */
export function ShortcutsDialog({ open, onClose }: { readonly open: boolean; readonly onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) element.showModal();
    else if (!open && element.open) element.close();
  }, [open]);
  return (
    <dialog ref={dialog} className="settings-dialog" aria-labelledby="shortcuts-title" onClose={onClose}>
      <h2 id="shortcuts-title">Keyboard shortcuts</h2>
      <dl className="shortcuts">
        {shortcuts.map(([keys, what]) => (
          <div key={what} className="shortcut-row">
            <dt>
              {keys.map((key, i) => (
                <span key={key}>
                  {i > 0 ? ' + ' : null}
                  <kbd>{key}</kbd>
                </span>
              ))}
            </dt>
            <dd>{what}</dd>
          </div>
        ))}
      </dl>
      <div className="dialog-actions">
        <button type="button" className="button primary" onClick={onClose}>
          Close
        </button>
      </div>
    </dialog>
  );
}
