import { useSyncExternalStore } from 'react';
import type { ConversationSettings } from '../../../src/protocol/conversations.js';
import type { PresetRecord } from '../../../src/protocol/settings.js';
import * as api from '../api/settings.js';

/** The server's global defaults and presets, as the settings dialog shows them (read when it opens). */
export interface ServerSettings {
  readonly state: 'idle' | 'loading' | 'ready' | 'error';
  readonly error: string | null;
  readonly defaults: ConversationSettings;
  readonly presets: readonly PresetRecord[];
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

function byName(presets: readonly PresetRecord[]): PresetRecord[] {
  return [...presets].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every change goes to the server first; what is shown is what it answered. Failures are thrown for the dialog to show. */
class ServerSettingsStore {
  private state: ServerSettings = { state: 'idle', error: null, defaults: {}, presets: [] };
  private readonly listeners = new Set<() => void>();

  readonly getState = (): ServerSettings => this.state;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(patch: Partial<ServerSettings>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }

  /** Reads both again: another browser may have changed them. */
  async load(): Promise<void> {
    this.set({ state: 'loading', error: null });
    try {
      const [defaults, presets] = await Promise.all([api.getDefaults(), api.listPresets()]);
      this.set({ state: 'ready', defaults, presets: byName(presets) });
    } catch (error) {
      this.set({ state: 'error', error: message(error) });
    }
  }

  async saveDefaults(defaults: ConversationSettings): Promise<void> {
    this.set({ defaults: await api.putDefaults(defaults) });
  }

  async addPreset(name: string, systemPrompt: string | null, settings: ConversationSettings): Promise<PresetRecord> {
    const preset = await api.createPreset({ name, systemPrompt, settings: api.settingsBody(settings) });
    this.set({ presets: byName([...this.state.presets, preset]) });
    return preset;
  }

  async renamePreset(id: string, name: string): Promise<void> {
    const preset = await api.updatePreset(id, { name });
    this.set({ presets: byName(this.state.presets.map((known) => (known.id === id ? preset : known))) });
  }

  async removePreset(id: string): Promise<void> {
    await api.deletePreset(id);
    this.set({ presets: this.state.presets.filter((known) => known.id !== id) });
  }
}

export const serverSettings = new ServerSettingsStore();

export function useServerSettings(): ServerSettings {
  return useSyncExternalStore(serverSettings.subscribe, serverSettings.getState);
}
