import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import type { ConversationSettings } from '../../../src/protocol/conversations.js';
import { ApiError, hasApiKey } from '../api/http.js';
import { settingsBody } from '../api/settings.js';
import { serverSettings, useServerSettings } from '../state/server-settings.js';
import { emptyForm, formFrom, settingNamed, settingsFrom, type FormProblem, type SettingKey, type SettingsForm } from '../state/settings-form.js';
import { store, useAppState } from '../state/store.js';
import { PresetsPanel } from './PresetsPanel.js';
import { SamplingFields } from './SamplingFields.js';

type Tab = 'conversation' | 'defaults' | 'presets';
const tabs: readonly Tab[] = ['conversation', 'defaults', 'presets'];

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));
const same = (a: ConversationSettings, b: ConversationSettings): boolean => JSON.stringify(formFrom(a)) === JSON.stringify(formFrom(b));

/**
 * The settings of the shown conversation (or of the next new one), the server's global defaults, and its
 * presets: one tab each, saved to the server (a new chat's are kept until its first message creates it).
 */
export function SettingsDialog({ open, onClose }: { readonly open: boolean; readonly onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const conversation = useAppState((state) => state.tree?.conversation ?? null);
  const draft = useAppState((state) => state.draft);
  const server = useServerSettings();
  const [tab, setTab] = useState<Tab>('conversation');
  const [systemPrompt, setSystemPrompt] = useState('');
  const [own, setOwn] = useState<SettingsForm>(emptyForm);
  const [defaults, setDefaults] = useState<SettingsForm>(emptyForm);
  const [defaultsShown, setDefaultsShown] = useState(false);
  const [problems, setProblems] = useState<{ conversation: FormProblem | null; defaults: FormProblem | null }>({ conversation: null, defaults: null });
  const [problem, setProblem] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const tabRefs = useRef<Partial<Record<Tab, HTMLButtonElement | null>>>({});

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) {
      setSystemPrompt(conversation ? (conversation.systemPrompt ?? '') : draft.systemPrompt);
      setOwn(formFrom(conversation ? conversation.settings : draft.settings));
      setDefaultsShown(false);
      setProblems({ conversation: null, defaults: null });
      setProblem(null);
      setNote(null);
      setTab('conversation');
      void serverSettings.load();
      element.showModal();
    } else if (!open && element.open) element.close();
  }, [open, conversation, draft]);

  // The defaults form starts from what the server has, once it has answered (each time the dialog opens).
  useEffect(() => {
    if (open && !defaultsShown && server.state === 'ready') {
      setDefaults(formFrom(server.defaults));
      setDefaultsShown(true);
    }
  }, [open, defaultsShown, server.state, server.defaults]);

  const showProblem = (where: 'conversation' | 'defaults', found: FormProblem): void => {
    setProblems((known) => ({ ...known, [where]: found }));
    setTab(where);
  };

  /** What the conversation tab holds, or why it cannot be read. */
  const current = (): { systemPrompt: string | null; settings: ConversationSettings } | string => {
    const parsed = settingsFrom(own);
    if ('problem' in parsed) {
      showProblem('conversation', parsed.problem);
      return parsed.problem.message;
    }
    return { systemPrompt: systemPrompt.trim() ? systemPrompt : null, settings: parsed.settings };
  };

  /** A server refusal at the field it names (`settings.topK`, `defaults.stop`), or for the whole form. */
  const refused = (error: unknown, where: 'conversation' | 'defaults'): void => {
    const key: SettingKey | undefined = error instanceof ApiError ? settingNamed(error.param, where === 'conversation' ? 'settings' : 'defaults') : undefined;
    if (key !== undefined) showProblem(where, { key, message: message(error) });
    else setProblem(`Could not save: ${message(error)}`);
  };

  const save = async (): Promise<void> => {
    setProblems({ conversation: null, defaults: null });
    setProblem(null);
    const mine = current();
    if (typeof mine === 'string') return;
    const parsedDefaults = settingsFrom(defaults);
    if ('problem' in parsedDefaults) return showProblem('defaults', parsedDefaults.problem);
    if (defaultsShown && !same(parsedDefaults.settings, server.defaults)) {
      try {
        await serverSettings.saveDefaults(parsedDefaults.settings);
      } catch (error) {
        return refused(error, 'defaults');
      }
    }
    if (!conversation) {
      store.setDraft({ model: draft.model, systemPrompt, settings: mine.settings });
      onClose();
      return;
    }
    try {
      await store.saveCurrent({ systemPrompt: mine.systemPrompt, settings: settingsBody(mine.settings) });
      onClose();
    } catch (error) {
      refused(error, 'conversation');
    }
  };

  const onTabKey = (event: KeyboardEvent<HTMLButtonElement>): void => {
    const at = tabs.indexOf(tab);
    const next = event.key === 'ArrowRight' ? tabs[(at + 1) % tabs.length] : event.key === 'ArrowLeft' ? tabs[(at + tabs.length - 1) % tabs.length] : event.key === 'Home' ? tabs[0] : event.key === 'End' ? tabs.at(-1) : undefined;
    if (next === undefined) return;
    event.preventDefault();
    setTab(next);
    tabRefs.current[next]?.focus();
  };

  const tabLabel: Record<Tab, string> = { conversation: conversation ? 'This conversation' : 'New conversation', defaults: 'Global defaults', presets: 'Presets' };

  return (
    <dialog ref={dialog} className="settings-dialog" aria-labelledby="settings-title" onClose={onClose}>
      <form
        method="dialog"
        noValidate
        onSubmit={(event) => {
          event.preventDefault();
          void save();
        }}
      >
        <h2 id="settings-title">Settings</h2>
        <div role="tablist" aria-label="Settings" className="settings-tabs">
          {tabs.map((name) => (
            <button
              key={name}
              ref={(element) => {
                tabRefs.current[name] = element;
              }}
              type="button"
              role="tab"
              id={`settings-tab-${name}`}
              aria-selected={tab === name}
              aria-controls={`settings-panel-${name}`}
              tabIndex={tab === name ? 0 : -1}
              onClick={() => setTab(name)}
              onKeyDown={onTabKey}
            >
              {tabLabel[name]}
            </button>
          ))}
        </div>
        <div role="tabpanel" id={`settings-panel-${tab}`} aria-labelledby={`settings-tab-${tab}`} className="settings-panel">
          {tab === 'conversation' ? (
            <>
              <p className="muted">{conversation ? "This conversation's own settings." : 'Settings of the conversation your next message starts.'} An empty field uses the global default.</p>
              {server.presets.length > 0 ? (
                <>
                  <label htmlFor="settings-preset">Fill from a preset</label>
                  <select
                    id="settings-preset"
                    value=""
                    onChange={(event) => {
                      const preset = server.presets.find((known) => known.id === event.target.value);
                      if (!preset) return;
                      setSystemPrompt(preset.systemPrompt ?? '');
                      setOwn(formFrom(preset.settings));
                      setNote(`Filled from “${preset.name}”; Save keeps it.`);
                    }}
                  >
                    <option value="">Choose a preset…</option>
                    {server.presets.map((preset) => (
                      <option key={preset.id} value={preset.id}>
                        {preset.name}
                      </option>
                    ))}
                  </select>
                </>
              ) : null}
              <p className="muted" role="status">
                {note}
              </p>
              <label htmlFor="settings-system">System prompt</label>
              <textarea id="settings-system" rows={4} value={systemPrompt} onChange={(event) => setSystemPrompt(event.target.value)} placeholder="You are a helpful assistant." />
              <SamplingFields idPrefix="settings" form={own} fallback={server.defaults} fallbackName="default" problem={problems.conversation} onChange={(key, value) => setOwn({ ...own, [key]: value })} />
            </>
          ) : tab === 'defaults' ? (
            <>
              <p className="muted">Used by every conversation on this server, in every browser, where it sets nothing of its own. An empty field leaves it to the model.</p>
              {server.state === 'error' ? (
                <p className="form-error" role="alert">
                  Could not load the defaults: {server.error}
                </p>
              ) : null}
              <SamplingFields idPrefix="defaults" form={defaults} fallback={{}} fallbackName="" problem={problems.defaults} onChange={(key, value) => setDefaults({ ...defaults, [key]: value })} />
            </>
          ) : (
            <PresetsPanel current={current} />
          )}
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
