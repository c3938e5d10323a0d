#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, readConfigFile, resolveConfig } from './config/load.js';
import { optionTable, type OptionKey } from './config/schema.js';
import { isParlanceError } from './errors.js';
import { findCachedModels, listCachedModels, removeCachedModel } from './engines/llama-cpp/model-cache.js';
import { DEFAULT_MODEL_REF, resolveModel } from './engines/llama-cpp/model-source.js';
import { packageVersion } from './package-info.js';
import { StartupError } from './startup/failures.js';

/** Commander names an option after its flag (`--keep-alive` → keepAlive); remember which table key each one fills. */
const attributeOf = new Map<OptionKey, string>();

/** Adds the table's options (all of them by default) to a command, with their env var and default in the help. */
function addConfigOptions(command: Command, keys: readonly OptionKey[] = Object.keys(optionTable) as OptionKey[]): Command {
  for (const key of keys) {
    const option = optionTable[key];
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

/** The server the client verbs (`run`, `ps`) talk to: --url, else the configured host and port. */
async function serverUrl(command: Command): Promise<string> {
  const given = command.opts()['url'] as string | undefined;
  if (given) return given.replace(/\/+$/, '');
  const config = await loadConfig(command);
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
}

async function serve(command: Command, extra: Partial<Record<OptionKey, unknown>> = {}): Promise<void> {
  const config = await loadConfig(command, extra);
  // While the model downloads or loads there is no reply to save: a signal ends the process at once
  // (without a handler, Node running as PID 1 in a container would ignore SIGTERM until killed).
  const whileLoading = (signal: NodeJS.Signals): never => process.exit(signal === 'SIGINT' ? 130 : 143);
  process.on('SIGINT', whileLoading);
  process.on('SIGTERM', whileLoading);
  // Loaded here, not at the top: `--version`, `list` or `run` need neither fastify nor llama.cpp.
  const { startServer } = await import('./main.js');
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

const program = new Command('parlance')
  .description('A self-hostable LLM chat server with an OpenAI-compatible API.')
  .version(packageVersion, '-v, --version', 'print the version')
  .option('--debug', 'print the stack of an error, not only its message')
  .helpCommand('help [command]', 'show the help of a command')
  .addHelpText('after', "\nWithout a command, 'parlance' runs 'serve'. 'parlance <command> --help' shows a command's options.");

/** Commander's error, said in one line with where to look next (never the whole help). */
function oneLineErrors(command: Command): Command {
  const names: string[] = [];
  for (let at: Command | null = command; at !== null && at !== program; at = at.parent) names.unshift(at.name());
  const hint = `'${['parlance', ...names].join(' ')} --help'`;
  return command.configureOutput({
    outputError: (text, write) => write(`parlance: ${text.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim().replace(/\(Did you mean/, '(did you mean')}; see ${hint}\n`),
  });
}

addConfigOptions(program.command('serve').description('run the server (the default command)')).action(async (_options, command: Command) => serve(command));

addConfigOptions(program.command('demo').description('run the server with the tiny built-in test model (random text, no download)')).action(async (_options, command: Command) =>
  serve(command, { demo: true }),
);

const urlOption = new Option('--url <url>', 'the Parlance server to talk to (default: http://--host:--port)').env('PARLANCE_URL');

addConfigOptions(
  program
    .command('run')
    .description("chat with a model in the terminal, over a running server's API (Ctrl+C stops a reply; Ctrl+D quits)")
    .argument('<model>', "a model id the server serves ('parlance ps' lists them)")
    .addOption(urlOption)
    .addOption(new Option('--api-key <key>', 'the API key the server asks for').env('PARLANCE_API_KEY'))
    .option('--system <text>', 'a system message to start the conversation with'),
  ['host', 'port'],
).action(async (model: string, options: { apiKey?: string; system?: string }, command: Command) => {
  const { runChat } = await import('./cli/chat.js');
  process.exitCode = await runChat({ url: await serverUrl(command), model, ...(options.apiKey ? { apiKey: options.apiKey } : {}), ...(options.system ? { system: options.system } : {}) });
});

addConfigOptions(program.command('pull').description('download a model into the cache ahead of time (default: the default model)'), ['modelsDir'])
  .argument('[model]', 'an hf:owner/repo/file.gguf reference or an http(s) URL', DEFAULT_MODEL_REF)
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

addConfigOptions(program.command('list').alias('models').alias('ls').description('list the models in the cache (--models-dir)'), ['modelsDir']).action(async (_options, command: Command) => {
  const config = await loadConfig(command);
  const models = await listCachedModels(config.modelsDir);
  if (models.length === 0) {
    process.stdout.write(`no models in ${config.modelsDir}; 'parlance pull' downloads the default one\n`);
    return;
  }
  const { modelsTable } = await import('./cli/tables.js');
  process.stdout.write(modelsTable(models));
});

addConfigOptions(program.command('rm').description('delete a model from the cache (--models-dir)').argument('<model...>', "model names or sources, as 'parlance list' shows them"), ['modelsDir']).action(
  async (names: string[], _options, command: Command) => {
    const config = await loadConfig(command);
    for (const name of names) {
      const matches = await findCachedModels(config.modelsDir, name);
      if (matches.length === 0) throw new StartupError(`no model '${name}' in ${config.modelsDir}; 'parlance list' shows what is there`);
      if (matches.length > 1) throw new StartupError(`'${name}' names ${matches.length} models (${matches.map((model) => model.ref).join(', ')}); say which by its source`);
      const [model] = matches;
      if (model) {
        await removeCachedModel(config.modelsDir, model);
        process.stdout.write(`deleted '${model.id}' (${model.path})\n`);
      }
    }
  },
);

addConfigOptions(program.command('ps').description('list the models a running server serves, and how busy each engine is').addOption(urlOption), ['host', 'port']).action(
  async (_options, command: Command) => {
    const url = await serverUrl(command);
    const { describeApiError } = await import('./cli/chat.js');
    const health = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) }).then(
      async (response) => (await response.json()) as import('./cli/tables.js').HealthReport,
      (error: unknown) => {
        throw new StartupError(describeApiError(error, url));
      },
    );
    const { processesTable } = await import('./cli/tables.js');
    if (health.loading) process.stdout.write('(still loading)\n');
    process.stdout.write(processesTable(health));
  },
);

const engine = program
  .command('engine')
  .description("the embedded engine's llama.cpp binary: which one a server loads, and building one for this machine")
  .addHelpText('after', "\nThe prebuilt binaries work everywhere; a build for this machine is optional and can be faster (see README).");

addConfigOptions(engine.command('status').description('say which llama.cpp binary a server started now would load: a local build or the prebuilt one'), ['gpu']).action(
  async (_options, command: Command) => {
    const config = await loadConfig(command);
    const { engineStatus } = await import('./cli/engine.js');
    await engineStatus(config.gpu, (text) => process.stdout.write(text));
  },
);

addConfigOptions(
  engine
    .command('build')
    .description("compile llama.cpp from the source node-llama-cpp bundles, with this machine's compiler and CPU instructions (offline; 10-60 minutes)")
    .option('--no-dispatch-patch', "leave node-llama-cpp's batch dispatch loop as shipped (the build patches it to batch sequences in order)"),
  ['gpu'],
).action(async (options: { dispatchPatch: boolean }, command: Command) => {
  const config = await loadConfig(command);
  const { engineBuild } = await import('./cli/engine.js');
  process.exitCode = await engineBuild({ gpu: config.gpu, patchDispatch: options.dispatchPatch }, (text) => process.stdout.write(text));
});

engine
  .command('remove')
  .description('delete the local builds, so that a server loads the prebuilt binary again')
  .action(async () => {
    const { engineRemove } = await import('./cli/engine.js');
    await engineRemove((text) => process.stdout.write(text));
  });

for (const command of [program, ...program.commands, ...engine.commands]) oneLineErrors(command);

/** `parlance` alone, or with only options (`parlance --port 9000`), runs `serve`; its own flags stay its own. */
function withDefaultCommand(argv: readonly string[]): string[] {
  const [first] = argv;
  const programFlags = ['-h', '--help', '-v', '--version'];
  if (first === undefined || (first.startsWith('-') && !programFlags.includes(first) && first !== '--debug')) return ['serve', ...argv];
  if (first === '--debug') return ['--debug', ...withDefaultCommand(argv.slice(1))];
  return [...argv];
}

const debug = process.argv.includes('--debug');
try {
  await program.parseAsync(withDefaultCommand(process.argv.slice(2)), { from: 'user' });
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  if (debug) process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  // Errors a user can act on are one line; anything else is one line too, with where to find more.
  const known = error instanceof ConfigError || error instanceof StartupError || isParlanceError(error);
  const message = error instanceof Error ? error.message : String(error);
  const line = known ? message.replace(/\s*\n\s*/g, ' ') : `${message.split('\n')[0] ?? message}${debug ? '' : ' (run with --debug for the stack)'}`;
  if (!debug || known) process.stderr.write(`parlance: ${line}\n`);
  process.exit(1);
}
