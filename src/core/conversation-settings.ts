/**
 * What a conversation reply is generated with: field by field, the conversation's own setting, else the
 * server's global default, else the engine's default (docs/decisions/settings-and-presets.md). A setting the
 * model cannot honour is refused, naming where it was set, never dropped.
 */
import type { Capability, ModelInfo, SamplingOptions } from '../engines/contract.js';
import { ParlanceError } from '../errors.js';
import type { ConversationSettings } from '../store/contract.js';
import { requiredCapabilities } from './capabilities.js';

type SettingKey = keyof ConversationSettings;

/** Every setting, in the order they are listed. */
export const settingKeys = ['maxTokens', 'temperature', 'topP', 'topK', 'minP', 'presencePenalty', 'frequencyPenalty', 'repeatPenalty', 'seed', 'stop'] as const satisfies readonly SettingKey[];

/** The setting behind each capability a sampling option needs. */
const settingOf: Partial<Record<Capability, SettingKey>> = {
  top_k: 'topK',
  min_p: 'minP',
  seed: 'seed',
  presence_penalty: 'presencePenalty',
  frequency_penalty: 'frequencyPenalty',
  repeat_penalty: 'repeatPenalty',
};

/** The settings a reply uses, and where each came from: `settings` (the conversation's) or `defaults`. */
export interface ResolvedSettings {
  readonly settings: ConversationSettings;
  readonly source: Readonly<Partial<Record<SettingKey, 'settings' | 'defaults'>>>;
}

export function resolveSettings(defaults: ConversationSettings, own: ConversationSettings): ResolvedSettings {
  const settings: Record<string, unknown> = {};
  const source: Partial<Record<SettingKey, 'settings' | 'defaults'>> = {};
  for (const key of settingKeys) {
    if (own[key] !== undefined) {
      settings[key] = own[key];
      source[key] = 'settings';
    } else if (defaults[key] !== undefined) {
      settings[key] = defaults[key];
      source[key] = 'defaults';
    }
  }
  return { settings: settings as ConversationSettings, source };
}

/** The engine contract's sampling options: the same names, absent fields left out. */
export function samplingFrom(settings: ConversationSettings): SamplingOptions {
  return Object.fromEntries(settingKeys.flatMap((key) => (settings[key] === undefined ? [] : [[key, settings[key]]]))) as SamplingOptions;
}

/**
 * Throws `unsupported_parameter` for the first setting `model` cannot honour, with `param` the path of the
 * field where it was set (`settings.topK`, or `defaults.topK` for a global default). A model the engine does
 * not list is not known to lack anything.
 */
export function refuseUnsupportedSettings(resolved: ResolvedSettings, model: ModelInfo | undefined): void {
  if (model === undefined) return;
  const request = { model: model.id, input: { kind: 'chat' as const, messages: [] }, sampling: samplingFrom(resolved.settings) };
  for (const need of requiredCapabilities(request)) {
    if (model.capabilities.has(need.capability)) continue;
    const key = settingOf[need.capability];
    const where = key === undefined ? undefined : resolved.source[key];
    const param = key === undefined || where === undefined ? need.param : `${where}.${key}`;
    const origin = where === 'defaults' ? ', set in the global defaults; remove it there' : ", set in this conversation's settings; remove it";
    throw new ParlanceError('unsupported_parameter', `The model '${model.id}' does not support ${key ?? need.param}${origin} or pick a model that does.`, { param });
  }
}
