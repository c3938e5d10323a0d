import type { ConversationSettings } from '../../../src/protocol/conversations.js';
import type { GlobalSettings, NewPresetBody, PresetList, PresetPatchBody, PresetRecord } from '../../../src/protocol/settings.js';
import { json } from './http.js';

/** Settings as a request body takes them (a mutable copy of the stop strings). */
export function settingsBody(settings: ConversationSettings): NonNullable<NewPresetBody['settings']> {
  return settings.stop === undefined ? { ...settings, stop: undefined } : { ...settings, stop: [...settings.stop] };
}

/** The server's global defaults and presets (`/parlance/api/settings`, `/parlance/api/presets`, see src/protocol/settings.ts). */

export async function getDefaults(): Promise<ConversationSettings> {
  return (await json<GlobalSettings>('/parlance/api/settings')).defaults;
}

export async function putDefaults(defaults: ConversationSettings): Promise<ConversationSettings> {
  return (await json<GlobalSettings>('/parlance/api/settings', { method: 'PUT', body: { defaults: settingsBody(defaults) } })).defaults;
}

export async function listPresets(): Promise<readonly PresetRecord[]> {
  return (await json<PresetList>('/parlance/api/presets')).presets;
}

export function createPreset(body: NewPresetBody): Promise<PresetRecord> {
  return json<PresetRecord>('/parlance/api/presets', { method: 'POST', body });
}

export function updatePreset(id: string, patch: PresetPatchBody): Promise<PresetRecord> {
  return json<PresetRecord>(`/parlance/api/presets/${encodeURIComponent(id)}`, { method: 'PATCH', body: patch });
}

export function deletePreset(id: string): Promise<void> {
  return json<undefined>(`/parlance/api/presets/${encodeURIComponent(id)}`, { method: 'DELETE' });
}
