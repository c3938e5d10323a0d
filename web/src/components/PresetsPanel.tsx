import { useState } from 'react';
import type { PresetRecord } from '../../../src/protocol/settings.js';
import { serverSettings, useServerSettings } from '../state/server-settings.js';

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** One preset: its name, renamed in place, and deleted. */
function PresetRow({ preset, onProblem }: { readonly preset: PresetRecord; readonly onProblem: (text: string | null) => void }) {
  const [renaming, setRenaming] = useState<string | null>(null);
  const inputId = `preset-rename-${preset.id}`;
  if (renaming !== null) {
    const done = async (): Promise<void> => {
      try {
        await serverSettings.renamePreset(preset.id, renaming.trim());
        onProblem(null);
        setRenaming(null);
      } catch (error) {
        onProblem(`Could not rename “${preset.name}”: ${message(error)}`);
      }
    };
    return (
      <li className="preset-row">
        <label htmlFor={inputId} className="visually-hidden">
          New name for {preset.name}
        </label>
        <input
          id={inputId}
          value={renaming}
          maxLength={100}
          autoFocus
          onChange={(event) => setRenaming(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter') {
              event.preventDefault();
              void done();
            } else if (event.key === 'Escape') {
              // The dialog stays open: Esc here only leaves the rename.
              event.preventDefault();
              event.stopPropagation();
              setRenaming(null);
            }
          }}
        />
        <button type="button" className="button" onClick={() => void done()}>
          Rename
        </button>
        <button type="button" className="button" onClick={() => setRenaming(null)}>
          Keep the name
        </button>
      </li>
    );
  }
  return (
    <li className="preset-row">
      <span className="preset-name">{preset.name}</span>
      <button type="button" className="button" aria-label={`Rename ${preset.name}`} onClick={() => setRenaming(preset.name)}>
        Rename
      </button>
      <button
        type="button"
        className="button"
        aria-label={`Delete ${preset.name}`}
        onClick={() =>
          void serverSettings.removePreset(preset.id).then(
            () => onProblem(null),
            (error: unknown) => onProblem(`Could not delete “${preset.name}”: ${message(error)}`),
          )
        }
      >
        Delete
      </button>
    </li>
  );
}

/** The server's presets, and a new one from what the conversation tab holds now. */
export function PresetsPanel({ current }: { readonly current: () => { systemPrompt: string | null; settings: PresetRecord['settings'] } | string }) {
  const { presets } = useServerSettings();
  const [name, setName] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [added, setAdded] = useState<string | null>(null);

  const add = async (): Promise<void> => {
    const source = current();
    if (typeof source === 'string') return setProblem(source);
    if (!name.trim()) return setProblem('Give the preset a name.');
    try {
      const preset = await serverSettings.addPreset(name.trim(), source.systemPrompt, source.settings);
      setProblem(null);
      setName('');
      setAdded(`Added “${preset.name}”.`);
    } catch (error) {
      setAdded(null);
      setProblem(`Could not add the preset: ${message(error)}`);
    }
  };

  return (
    <>
      <p className="muted">A preset is a system prompt plus settings, kept on the server. Picking one fills a conversation's settings with a copy of it.</p>
      {presets.length === 0 ? (
        <p className="muted">No presets yet.</p>
      ) : (
        <ul className="preset-list" aria-label="Presets">
          {presets.map((preset) => (
            <PresetRow key={preset.id} preset={preset} onProblem={setProblem} />
          ))}
        </ul>
      )}
      <label htmlFor="preset-new-name">New preset from this conversation's system prompt and settings</label>
      <div className="preset-row">
        <input
          id="preset-new-name"
          value={name}
          maxLength={100}
          placeholder="Name"
          onChange={(event) => setName(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter') {
              event.preventDefault();
              void add();
            }
          }}
        />
        <button type="button" className="button" onClick={() => void add()}>
          Add preset
        </button>
      </div>
      <p className="muted" role="status">
        {added}
      </p>
      {problem ? (
        <p className="form-error" role="alert">
          {problem}
        </p>
      ) : null}
    </>
  );
}
