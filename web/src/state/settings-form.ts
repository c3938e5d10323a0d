import type { ConversationSettings } from '../../../src/protocol/conversations.js';

/** The sampling settings as the settings form shows them: text fields, empty for "not set here". */
export type SettingKey = keyof ConversationSettings;
export type SettingsForm = Readonly<Record<SettingKey, string>>;

export interface FieldSpec {
  readonly key: SettingKey;
  readonly label: string;
  /** The input's bounds (the server checks them again, and names the field it refuses). */
  readonly min?: number;
  readonly max?: number;
  readonly step: number | 'any';
  readonly integer?: true;
  readonly hint?: string;
}

/** Every number setting, in the order the form lists them (stop sequences are a text box of their own). */
export const numberFields: readonly FieldSpec[] = [
  { key: 'temperature', label: 'Temperature', min: 0, max: 2, step: 'any' },
  { key: 'maxTokens', label: 'Max tokens', min: 1, max: 1_048_576, step: 1, integer: true },
  { key: 'topP', label: 'Top P', min: 0, max: 1, step: 'any' },
  { key: 'topK', label: 'Top K', min: 0, max: 1_000_000, step: 1, integer: true, hint: '0: off' },
  { key: 'minP', label: 'Min P', min: 0, max: 1, step: 'any' },
  { key: 'seed', label: 'Seed', step: 1, integer: true },
  { key: 'presencePenalty', label: 'Presence penalty', min: -2, max: 2, step: 'any' },
  { key: 'frequencyPenalty', label: 'Frequency penalty', min: -2, max: 2, step: 'any' },
  { key: 'repeatPenalty', label: 'Repeat penalty', min: 0, max: 2, step: 'any', hint: '1: off' },
];

export const emptyForm: SettingsForm = {
  maxTokens: '',
  temperature: '',
  topP: '',
  topK: '',
  minP: '',
  presencePenalty: '',
  frequencyPenalty: '',
  repeatPenalty: '',
  seed: '',
  stop: '',
};

/** Stop strings one a line; a line break inside one is written `\n` (and a backslash `\\`). */
function escapeStop(stop: string): string {
  return stop.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function unescapeStop(line: string): string {
  return line.replace(/\\(\\|n)/g, (_, char: string) => (char === 'n' ? '\n' : '\\'));
}

export function formFrom(settings: ConversationSettings): SettingsForm {
  const form: Record<SettingKey, string> = { ...emptyForm };
  for (const field of numberFields) {
    const value = settings[field.key];
    if (typeof value === 'number') form[field.key] = String(value);
  }
  form.stop = (settings.stop ?? []).map(escapeStop).join('\n');
  return form;
}

/** A value the form cannot turn into a setting, with the field it is in. */
export interface FormProblem {
  readonly key: SettingKey;
  readonly message: string;
}

/** The settings a form holds, or the first field that is not a number (bounds are the inputs' and the server's). */
export function settingsFrom(form: SettingsForm): { readonly settings: ConversationSettings } | { readonly problem: FormProblem } {
  const settings: Record<string, unknown> = {};
  for (const field of numberFields) {
    const text = form[field.key].trim();
    if (text === '') continue;
    const value = Number(text);
    if (!Number.isFinite(value) || (field.integer && !Number.isInteger(value))) {
      return { problem: { key: field.key, message: `${field.label} is ${field.integer ? 'a whole number' : 'a number'}.` } };
    }
    settings[field.key] = value;
  }
  const stops = form.stop.split('\n').filter((line) => line !== '').map(unescapeStop);
  if (stops.length > 4) return { problem: { key: 'stop', message: 'At most 4 stop sequences.' } };
  if (stops.length > 0) settings['stop'] = stops;
  return { settings: settings as ConversationSettings };
}

/** The setting a server error names (`settings.topK`, `defaults.stop[0]`), if it is one of the form's. */
export function settingNamed(param: string | null, prefix: 'settings' | 'defaults'): SettingKey | undefined {
  if (param === null || !param.startsWith(`${prefix}.`)) return undefined;
  const key = /^[A-Za-z]+/.exec(param.slice(prefix.length + 1))?.[0];
  return key !== undefined && key in emptyForm ? (key as SettingKey) : undefined;
}

/** How a setting reads as a placeholder ("default 0.7", stop strings joined). */
export function shownValue(settings: ConversationSettings, key: SettingKey): string | undefined {
  const value = settings[key];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.map(escapeStop).join(' · ') : String(value);
}
