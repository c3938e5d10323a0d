import { z } from 'zod';
import { oneLineSchema, settingsSchema, systemPromptSchema, type ConversationSettings } from './conversations.js';

/**
 * Settings kept on the server, shared by every browser of it (`/parlance/api/*`):
 *
 *   GET    /parlance/api/settings                    → GlobalSettings
 *   PUT    /parlance/api/settings    GlobalSettings  → GlobalSettings (replaces the defaults as a whole)
 *   GET    /parlance/api/presets                     → PresetList (by name)
 *   POST   /parlance/api/presets     NewPresetBody   → PresetRecord (201)
 *   GET    /parlance/api/presets/:id                 → PresetRecord
 *   PATCH  /parlance/api/presets/:id PresetPatchBody → PresetRecord
 *   DELETE /parlance/api/presets/:id                 → 204
 *
 * A conversation is started from a preset, or a preset applied to one, with `presetId` in the body of
 * `POST /parlance/api/conversations` or `PATCH /parlance/api/conversations/:id`.
 *
 * What a reply uses, field by field: the conversation's own setting, else the global default, else the
 * engine's default. A preset is a template, copied into the conversation when applied; editing the preset
 * later changes no conversation. (docs/decisions/settings-and-presets.md)
 */

export interface GlobalSettings {
  /** Sampling settings every conversation reply uses where the conversation sets none of its own. */
  readonly defaults: ConversationSettings;
}

/** A named system prompt plus settings. */
export interface PresetRecord {
  readonly id: string;
  readonly name: string;
  readonly systemPrompt: string | null;
  readonly settings: ConversationSettings;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface PresetList {
  readonly presets: readonly PresetRecord[];
}

/** The most presets a server keeps: the list is answered whole. */
export const PRESETS_MAX = 200;

/** A preset's name: one line of plain text, as a title is. */
export const presetNameSchema = oneLineSchema(100, 'a name');

export const globalSettingsBodySchema = z.object({ defaults: settingsSchema }).strict();

export const newPresetBodySchema = z
  .object({
    name: presetNameSchema,
    systemPrompt: systemPromptSchema.nullable().optional(),
    settings: settingsSchema.optional(),
  })
  .strict();
export type NewPresetBody = z.infer<typeof newPresetBodySchema>;

export const presetPatchBodySchema = newPresetBodySchema.partial().strict();
export type PresetPatchBody = z.infer<typeof presetPatchBodySchema>;
