/** The global defaults and the presets (migration 0007), through the store's own Kysely instance. */
import type { Kysely } from 'kysely';
import { presetsMax, type ConversationSettings, type NewPreset, type PresetPatch, type PresetRecord, type SettingsStore } from '../contract.js';
import { now, uuidv7 } from './ids.js';
import type { Millis, StoreDatabase } from './schema.js';
import { checkSettings, checkWith, invalid, notFound } from './validation.js';
import { z } from 'zod';

// Types, not interfaces: Kysely's withTables wants index-signature-compatible records.
type AppSettingsTable = {
  key: string;
  /** JSON text. */
  value: string;
  updated_at: Millis;
};

type PresetsTable = {
  id: string;
  name: string;
  system_prompt: string | null;
  /** JSON of {@link ConversationSettings}. */
  settings: string;
  created_at: Millis;
  updated_at: Millis;
};

export type SettingsDatabase = {
  app_settings: AppSettingsTable;
  presets: PresetsTable;
};

const defaultsKey = 'defaults';
/** The store's own bounds on a preset's text (the API's are narrower): what is kept is always readable back. */
const nameSchema = z.string().min(1).max(200);
const systemPromptSchema = z.string().max(1_000_000).nullable();

function toPreset(row: { id: string; name: string; system_prompt: string | null; settings: string; created_at: number | string; updated_at: number | string }): PresetRecord {
  return {
    id: row.id,
    name: row.name,
    systemPrompt: row.system_prompt,
    // Trusted: validated on the way in, as a conversation's settings are.
    settings: JSON.parse(row.settings) as ConversationSettings,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export class KyselySettingsStore implements SettingsStore {
  constructor(private readonly db: Kysely<StoreDatabase & SettingsDatabase>) {}

  async getDefaults(): Promise<ConversationSettings> {
    const row = await this.db.selectFrom('app_settings').select('value').where('key', '=', defaultsKey).executeTakeFirst();
    return row === undefined ? {} : (JSON.parse(row.value) as ConversationSettings);
  }

  async setDefaults(defaults: ConversationSettings): Promise<ConversationSettings> {
    const checked = checkSettings(defaults, 'defaults');
    const value = JSON.stringify(checked);
    const time = now();
    await this.db
      .insertInto('app_settings')
      .values({ key: defaultsKey, value, updated_at: time })
      .onConflict((conflict) => conflict.column('key').doUpdateSet({ value, updated_at: time }))
      .execute();
    return checked;
  }

  async listPresets(): Promise<readonly PresetRecord[]> {
    const rows = await this.db.selectFrom('presets').selectAll().orderBy('name').orderBy('id').limit(presetsMax).execute();
    return rows.map(toPreset);
  }

  async getPreset(id: string): Promise<PresetRecord | undefined> {
    const row = await this.db.selectFrom('presets').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toPreset(row);
  }

  async createPreset(input: NewPreset): Promise<PresetRecord> {
    const name = checkWith(nameSchema, input.name, 'name');
    const time = now();
    const row = {
      id: uuidv7(),
      name,
      system_prompt: checkWith(systemPromptSchema, input.systemPrompt ?? null, 'systemPrompt'),
      settings: JSON.stringify(checkSettings(input.settings ?? {})),
      created_at: time,
      updated_at: time,
    };
    await this.#writeNamed(name, undefined, async () => {
      await this.db.transaction().execute(async (trx) => {
        const { count } = await trx.selectFrom('presets').select((eb) => eb.fn.countAll<number | string>().as('count')).executeTakeFirstOrThrow();
        if (Number(count) >= presetsMax) throw invalid('name', `There are ${presetsMax} presets, the most a server keeps; delete one first.`);
        await trx.insertInto('presets').values(row).execute();
      });
    });
    return toPreset(row);
  }

  async updatePreset(id: string, patch: PresetPatch): Promise<PresetRecord> {
    const name = patch.name === undefined ? undefined : checkWith(nameSchema, patch.name, 'name');
    const set = {
      ...(name === undefined ? {} : { name }),
      ...(patch.systemPrompt === undefined ? {} : { system_prompt: checkWith(systemPromptSchema, patch.systemPrompt, 'systemPrompt') }),
      ...(patch.settings === undefined ? {} : { settings: JSON.stringify(checkSettings(patch.settings)) }),
      updated_at: now(),
    };
    const row = await this.#writeNamed(name, id, () => this.db.updateTable('presets').set(set).where('id', '=', id).returningAll().executeTakeFirst());
    if (row === undefined) throw notFound('preset', id);
    return toPreset(row);
  }

  async deletePreset(id: string): Promise<void> {
    const result = await this.db.deleteFrom('presets').where('id', '=', id).executeTakeFirst();
    if (result.numDeletedRows === 0n) throw notFound('preset', id);
  }

  /**
   * Runs a write that gives a preset `name`, turning the unique index's refusal into `invalid_request`
   * (param `name`). The index decides, not a read before the write, so two replicas cannot both take a
   * name; the look-up after a failure only tells that refusal from any other error, whose codes differ by
   * database.
   */
  async #writeNamed<T>(name: string | undefined, id: string | undefined, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (name === undefined) throw error;
      const holder = await this.db.selectFrom('presets').select('id').where('name', '=', name).executeTakeFirst();
      if (holder !== undefined && holder.id !== id) throw invalid('name', `A preset named “${name}” exists already.`);
      throw error;
    }
  }
}
