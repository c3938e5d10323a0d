import { useEffect, useRef, useState } from 'react';
import { hasApiKey } from '../api/http.js';
import { settingsBody, store, useAppState, type SettingsDraft } from '../state/store.js';

/** System prompt, temperature and max tokens of the shown conversation (or of the next new one). */
export function SettingsDialog({ open, onClose }: { readonly open: boolean; readonly onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const conversation = useAppState((state) => state.tree?.conversation ?? null);
  const draft = useAppState((state) => state.draft);
  const [systemPrompt, setSystemPrompt] = useState('');
  const [temperature, setTemperature] = useState('');
  const [maxTokens, setMaxTokens] = useState('');
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) {
      const source: SettingsDraft = conversation
        ? {
            model: conversation.model,
            systemPrompt: conversation.systemPrompt ?? '',
            temperature: conversation.settings.temperature ?? null,
            maxTokens: conversation.settings.maxTokens ?? null,
          }
        : draft;
      setSystemPrompt(source.systemPrompt);
      setTemperature(source.temperature === null ? '' : String(source.temperature));
      setMaxTokens(source.maxTokens === null ? '' : String(source.maxTokens));
      setProblem(null);
      element.showModal();
    } else if (!open && element.open) element.close();
  }, [open, conversation, draft]);

  const save = async (): Promise<void> => {
    const t = temperature.trim() === '' ? null : Number(temperature);
    const m = maxTokens.trim() === '' ? null : Number(maxTokens);
    if (t !== null && (!Number.isFinite(t) || t < 0 || t > 2)) return setProblem('Temperature is a number from 0 to 2.');
    if (m !== null && (!Number.isInteger(m) || m < 1)) return setProblem('Max tokens is a whole number of at least 1.');
    const next: SettingsDraft = { model: conversation?.model ?? draft.model, systemPrompt, temperature: t, maxTokens: m };
    if (!conversation) {
      store.setDraft(next);
      onClose();
      return;
    }
    const ok = await store.updateCurrent({ systemPrompt: systemPrompt.trim() ? systemPrompt : null, settings: settingsBody(next, conversation.settings) });
    if (ok) onClose();
  };

  return (
    <dialog ref={dialog} className="settings-dialog" aria-labelledby="settings-title" onClose={onClose}>
      <form
        method="dialog"
        onSubmit={(event) => {
          event.preventDefault();
          void save();
        }}
      >
        <h2 id="settings-title">{conversation ? 'Conversation settings' : 'Settings for the new conversation'}</h2>
        <label htmlFor="settings-system">System prompt</label>
        <textarea id="settings-system" rows={5} value={systemPrompt} onChange={(event) => setSystemPrompt(event.target.value)} placeholder="You are a helpful assistant." />
        <div className="settings-row">
          <div>
            <label htmlFor="settings-temperature">Temperature</label>
            <input id="settings-temperature" type="number" inputMode="decimal" min={0} max={2} step={0.1} value={temperature} placeholder="model default" onChange={(event) => setTemperature(event.target.value)} />
          </div>
          <div>
            <label htmlFor="settings-max-tokens">Max tokens</label>
            <input id="settings-max-tokens" type="number" inputMode="numeric" min={1} step={1} value={maxTokens} placeholder="server default" onChange={(event) => setMaxTokens(event.target.value)} />
          </div>
        </div>
        {hasApiKey() ? (
          <fieldset className="key-settings">
            <legend>API key</legend>
            <p className="muted">This browser keeps an API key for this server.</p>
            <div className="error-actions">
              <button
                type="button"
                className="button"
                onClick={() => {
                  onClose();
                  store.openKeyDialog();
                }}
              >
                Change the key…
              </button>
              <button
                type="button"
                className="button"
                onClick={() => {
                  onClose();
                  store.forgetApiKey();
                }}
              >
                Forget the key
              </button>
            </div>
          </fieldset>
        ) : null}
        {problem ? (
          <p className="form-error" role="alert">
            {problem}
          </p>
        ) : null}
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary">
            Save
          </button>
        </div>
      </form>
    </dialog>
  );
}
