/**
 * The list of migrations, imported statically so that the compiled build (and
 * any bundle) carries them: no directory is scanned at run time.
 *
 * Append-only: add a new `NNNN_name.ts` file and one line here; never edit,
 * rename, reorder or remove a released migration. Names sort in the order they
 * run; Kysely's Migrator refuses a database whose applied migrations are not a
 * prefix of this list.
 */
import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial.js';
import * as m0002 from './0002_reply_leases.js';
import * as m0003 from './0003_responses.js';
import * as m0004 from './0004_message_parts.js';
import * as m0005 from './0005_message_search.js';
import * as m0006 from './0006_stream_log.js';
import * as m0007 from './0007_settings_presets.js';
import * as m0008 from './0008_message_attachments.js';

export const migrations: Readonly<Record<string, Migration>> = {
  '0001_initial': m0001,
  '0002_reply_leases': m0002,
  '0003_responses': m0003,
  '0004_message_parts': m0004,
  '0005_message_search': m0005,
  '0006_stream_log': m0006,
  '0007_settings_presets': m0007,
  '0008_message_attachments': m0008,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...migrations }),
};
