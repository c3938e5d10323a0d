import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ParlanceError } from '../../../errors.js';
import { idSchema } from '../../../protocol/conversations.js';
import { globalSettingsBodySchema, newPresetBodySchema, presetPatchBodySchema, type GlobalSettings, type PresetList } from '../../../protocol/settings.js';
import type { ConversationSettings } from '../../../store/contract.js';
import type { HttpDeps } from '../../deps.js';
import { definedOnly } from '../../defined-only.js';

const idParams = z.object({ id: idSchema });


function settingsOf(settings: Record<string, unknown> | undefined): { settings?: ConversationSettings } {
  return settings === undefined ? {} : { settings: definedOnly(settings) as ConversationSettings };
}

/** The server's global defaults and its presets (`src/protocol/settings.ts`); registered under Parlance's own prefix only. */
export const settingsRoutes: FastifyPluginAsync<HttpDeps> = async (plain, deps) => {
  const app = plain.withTypeProvider<ZodTypeProvider>();
  const settings = deps.store.settings;

  app.get('/api/settings', async (): Promise<GlobalSettings> => ({ defaults: await settings.getDefaults() }));

  app.put('/api/settings', { schema: { body: globalSettingsBodySchema } }, async (request): Promise<GlobalSettings> => ({
    defaults: await settings.setDefaults(definedOnly(request.body.defaults) as ConversationSettings),
  }));

  app.get('/api/presets', async (): Promise<PresetList> => ({ presets: await settings.listPresets() }));

  app.post('/api/presets', { schema: { body: newPresetBodySchema } }, async (request, reply) => {
    const { settings: given, ...rest } = request.body;
    return reply.status(201).send(await settings.createPreset({ ...definedOnly(rest), ...settingsOf(given) }));
  });

  app.get('/api/presets/:id', { schema: { params: idParams } }, async (request) => {
    const preset = await settings.getPreset(request.params.id);
    if (preset === undefined) throw new ParlanceError('not_found', `No preset ${request.params.id}.`);
    return preset;
  });

  app.patch('/api/presets/:id', { schema: { params: idParams, body: presetPatchBodySchema } }, async (request) => {
    const { settings: given, ...rest } = request.body;
    return settings.updatePreset(request.params.id, { ...definedOnly(rest), ...settingsOf(given) });
  });

  app.delete('/api/presets/:id', { schema: { params: idParams } }, async (request, reply) => {
    await settings.deletePreset(request.params.id);
    return reply.status(204).send();
  });
};
