#!/usr/bin/env node
import { Command, Option } from 'commander';
import { ConfigError, readConfigFile, resolveConfig } from './config/load.js';
import { optionTable, type OptionKey } from './config/schema.js';
import { isParlanceError } from './errors.js';
import { DEFAULT_MODEL_REF, resolveModel } from './engines/llama-cpp/model-source.js';
import { startServer } from './main.js';

/** Commander names an option after its flag (`--keep-alive` → keepAlive); remember which table key each one fills. */
const attributeOf = new Map<OptionKey, string>();

/** Adds every option of the table to a command, with its env var and default in the help. */
function addConfigOptions(command: Command): Command {
  for (const [key, option] of Object.entries(optionTable) as [OptionKey, (typeof optionTable)[OptionKey]][]) {
    const flag = new Option(option.flag, `${option.description} [env ${option.env}]`);
    if ('repeatable' in option) flag.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    const fallback = option.schema.safeParse(undefined);
    if (fallback.success && fallback.data !== undefined && typeof fallback.data !== 'boolean' && !Array.isArray(fallback.data)) flag.default(fallback.data);
    attributeOf.set(key, flag.attributeName());
    command.addOption(flag);
  }
  return command.option('--config <path>', 'a config file, JSON or YAML (.yaml/.yml), of options by name (e.g. {"port": 8080} or port: 8080) [env PARLANCE_CONFIG]');
}

/** Only flags the user typed count: commander's defaults must not override env or the config file. */
function typedFlags(command: Command): Partial<Record<OptionKey, unknown>> {
  const values: Partial<Record<OptionKey, unknown>> = {};
  const given = command.opts();
  for (const [key, attribute] of attributeOf) {
    if (command.getOptionValueSource(attribute) === 'cli') values[key] = given[attribute];
  }
  return values;
}

async function loadConfig(command: Command, extra: Partial<Record<OptionKey, unknown>> = {}) {
  const configPath = (command.opts()['config'] as string | undefined) ?? process.env['PARLANCE_CONFIG'];
  const file = configPath ? await readConfigFile(configPath) : {};
  return resolveConfig({ file, env: process.env, overrides: { ...typedFlags(command), ...extra } });
}

async function serve(command: Command, extra: Partial<Record<OptionKey, unknown>> = {}): Promise<void> {
  const config = await loadConfig(command, extra);
  // While the model downloads or loads there is no reply to save: a signal ends the process at once
  // (without a handler, Node running as PID 1 in a container would ignore SIGTERM until killed).
  const whileLoading = (signal: NodeJS.Signals): never => process.exit(signal === 'SIGINT' ? 130 : 143);
  process.on('SIGINT', whileLoading);
  process.on('SIGTERM', whileLoading);
  const server = await startServer(config, { progressBar: process.stderr.isTTY, env: process.env });
  process.off('SIGINT', whileLoading);
  process.off('SIGTERM', whileLoading);
  let signals = 0;
  const shutdown = (signal: string): void => {
    signals++;
    if (signals > 1) process.exit(130); // a second signal means "now"
    server.app.log.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => process.exit(1), 10_000);
    deadline.unref();
    void server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        server.app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // A promise some code path forgot to catch is a bug to log, not a reason to drop every other request.
  process.on('unhandledRejection', (reason) => server.app.log.error({ err: reason }, 'unhandled promise rejection'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

const program = new Command('parlance').description('A self-hostable LLM chat server with an OpenAI-compatible API.').showHelpAfterError();

addConfigOptions(program.command('serve', { isDefault: true }).description('run the server (the default command)')).action(async (_options, command: Command) => serve(command));

addConfigOptions(program.command('demo').description('run the server with the tiny built-in test model (random text, no download)')).action(async (_options, command: Command) =>
  serve(command, { demo: true }),
);

program
  .command('pull')
  .description('download a model into the cache ahead of time (default: the default model)')
  .argument('[model]', 'an hf:owner/repo/file.gguf reference or an http(s) URL', DEFAULT_MODEL_REF)
  .addOption(new Option(optionTable.modelsDir.flag, optionTable.modelsDir.description))
  .action(async (model: string, _options, command: Command) => {
    const config = await loadConfig(command);
    const { path, downloaded } = await resolveModel(model, {
      modelsDir: config.modelsDir,
      progressBar: process.stderr.isTTY,
      ...(process.env['HF_ENDPOINT'] ? { hfEndpoint: process.env['HF_ENDPOINT'] } : {}),
      ...(process.env['HF_TOKEN'] ? { hfToken: process.env['HF_TOKEN'] } : {}),
    });
    process.stdout.write(`${downloaded ? 'downloaded' : 'already cached'}: ${path}\n`);
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Errors a user can act on are printed as one clear message, without a stack trace.
  if (error instanceof ConfigError || isParlanceError(error)) {
    process.stderr.write(`parlance: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
