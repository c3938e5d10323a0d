import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ServiceNotice } from '../http/deps.js';
import { ChatWrapperChoices } from '../engines/llama-cpp/chat-wrapper-choice.js';
import { LlamaCppEngine, openLlama } from '../engines/llama-cpp/engine.js';
import { estimateMemory, inspectCapabilities } from '../engines/llama-cpp/model-inspect.js';
import { ModelLibrary, type LibraryModel } from '../engines/llama-cpp/model-library.js';
import { describeBinding } from '../engines/llama-cpp/local-build.js';
import { DEFAULT_MODEL_REF, ModelUnavailableError, modelIdFromPath, resolveModel } from '../engines/llama-cpp/model-source.js';
import { ensureTinyModel, TINY_MODEL_CONTEXT_LENGTH } from '../engines/llama-cpp/tiny-model.js';
import { modelLoadFailure } from './failures.js';

/**
 * The embedded engine's start: the llama.cpp binding, the model to serve, and its load. main.ts imports this
 * module (and so node-llama-cpp) before anything else of the server and starts it at once, so that the
 * binding's check and the model's load, which run off the main thread, overlap with loading the HTTP stack
 * and opening the store.
 */

export interface EmbeddedStartOptions {
  readonly progressBar?: boolean;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** What the start reports as it goes: the model served is the demo one, a notice for the page, a model's load time. */
export interface EmbeddedHooks {
  demo(): void;
  notice(notice: ServiceNotice): void;
  loadTime(engine: string, model: string, seconds: number): void;
}

export interface EmbeddedStart {
  /** The library, with the chosen model loaded; rejects with a StartupError when the model cannot be had or loaded. */
  readonly library: Promise<ModelLibrary>;
  /** For a start that failed elsewhere first: waits for the load to settle, then releases the model and the binding. */
  abandon(): Promise<void>;
}

interface EmbeddedModel {
  readonly path: string;
  readonly demo: boolean;
  readonly notice?: ServiceNotice;
}

const demoNotice = (why: string): ServiceNotice => ({
  level: 'warning',
  message: `${why} Parlance is serving its tiny built-in test model: replies are random text. To chat with a real model, run 'npm run pull' (or 'parlance pull') with internet access, or pass --model /path/to/model.gguf (PARLANCE_MODEL).`,
});

/** Picks the GGUF the embedded engine loads: the one named, else the default, else (offline) the tiny demo model. */
async function chooseModel(config: Config, options: EmbeddedStartOptions, log: Logger): Promise<EmbeddedModel> {
  const tinyPath = join(config.modelsDir, 'parlance-tiny.gguf');
  if (config.demo) {
    return { path: await ensureTinyModel(tinyPath), demo: true, notice: demoNotice('Demo mode (--demo).') };
  }
  const env = options.env ?? {};
  const resolveOptions = {
    modelsDir: config.modelsDir,
    progressBar: options.progressBar ?? false,
    ...(env['HF_ENDPOINT'] ? { hfEndpoint: env['HF_ENDPOINT'] } : {}),
    ...(env['HF_TOKEN'] ? { hfToken: env['HF_TOKEN'] } : {}),
  };
  if (config.model !== undefined) {
    // A model the user named must be had: failing here is the right answer, with the reason.
    const { path } = await resolveModel(config.model, resolveOptions);
    return { path, demo: false };
  }
  try {
    const { path, downloaded } = await resolveModel(DEFAULT_MODEL_REF, resolveOptions);
    if (downloaded) log.info({ path }, 'downloaded the default model');
    return { path, demo: false };
  } catch (error) {
    if (!(error instanceof ModelUnavailableError)) throw error;
    const notice = demoNotice(`The default model could not be downloaded: ${error.reason.replace(/[.\s]+$/, '')}.`);
    log.warn(notice.message);
    return { path: await ensureTinyModel(tinyPath), demo: true, notice };
  }
}

/** Opens the binding, chooses the model and loads it, all started now; see {@link EmbeddedStart}. */
export function startEmbedded(config: Config, options: EmbeddedStartOptions, log: Logger, hooks: EmbeddedHooks): EmbeddedStart {
  // llama.cpp says some things once per sequence: each is worth one line.
  const said = new Set<string>();
  const llamaLog = (level: 'warn' | 'error', message: string): void => {
    if (said.has(message)) return;
    said.add(message);
    log[level]({ engine: 'llama' }, message);
  };
  const opening = openLlama({ gpu: config.gpu, log: llamaLog, dataDir: config.dataDir });
  // Awaited below, or disposed of when the start fails first: never an unhandled rejection meanwhile.
  opening.catch(() => undefined);
  const library = (async () => {
    const model = await chooseModel(config, options, log);
    if (model.demo) hooks.demo();
    if (model.notice) hooks.notice(model.notice);
    const modelId = config.modelAlias ?? modelIdFromPath(model.path);
    const started = await opening
      .then((binding) => startModelLibrary(config, log, { id: modelId, path: model.path }, hooks.loadTime, binding, llamaLog))
      .catch((error: unknown) => {
        throw modelLoadFailure(error, model.path);
      });
    // The directory is read while the chosen model loads (which it then does not inspect).
    await Promise.all([started.preload(modelId), started.scan()]).catch(async (error: unknown) => {
      await started.close();
      throw modelLoadFailure(error, model.path);
    });
    return started;
  })();
  library.catch(() => undefined);
  return {
    library,
    abandon: async () => {
      await library.then((loaded) => loaded.close()).catch(() => undefined);
      // A start that failed before the library took the binding: it is released here (the library's close did otherwise).
      await opening.then((llama) => (llama.disposed ? undefined : llama.dispose())).catch(() => undefined);
    },
  };
}

/**
 * The embedded engine: every GGUF of the models directory plus the chosen one, loaded on demand over one
 * llama.cpp binding (model-library.ts). The chosen model is loaded at start, so that a bad one fails the start.
 */
function startModelLibrary(
  config: Config,
  log: Logger,
  chosen: LibraryModel,
  loadTime: EmbeddedHooks['loadTime'],
  binding: Awaited<ReturnType<typeof openLlama>>,
  llamaLog: (level: 'warn' | 'error', message: string) => void,
): ModelLibrary {
  const chatWrappers = new ChatWrapperChoices(join(config.dataDir, 'chat-wrappers.json'));
  const runtime = describeBinding(binding);
  // The prebuilt CPU binary is the slow one of the two (docs/decisions/embedded-engine.md): say how to get the other.
  const hint = runtime.binary === 'prebuilt' && runtime.gpu === false ? "; 'parlance engine build' compiles a faster one for this CPU (offline, minutes)" : '';
  log.info({ llamaCpp: runtime }, `llama.cpp: ${runtime.binary} binary (${runtime.gpu === false ? 'CPU' : runtime.gpu}), release ${runtime.release}, dispatch loop ${runtime.dispatchLoop}${hint}`);
  const tinyPath = join(config.modelsDir, 'parlance-tiny.gguf');
  // The demo model was trained on a short context: a longer one only earns llama.cpp's warning.
  const contextSizeFor = (path: string): number => (resolve(path) === resolve(tinyPath) ? Math.min(config.contextSize, TINY_MODEL_CONTEXT_LENGTH) : config.contextSize);
  return new ModelLibrary({
    models: [chosen],
    directory: config.modelsDir,
    maxLoaded: config.modelsMax,
    memoryBudgetBytes: config.modelsMemoryMb * 1e6,
    estimateMemory: ({ path }) => estimateMemory(path, { contextSize: contextSizeFor(path), sequences: config.sequences }),
    keepAliveMs: config.modelKeepAliveSeconds * 1000,
    queueLength: config.queueLength,
    inspect: inspectCapabilities,
    dispose: () => binding.dispose(),
    runtime,
    onChange: (model, event, detail) => (event === 'failed' ? log.warn({ model: model.path }, `cannot load ${model.id}: ${detail ?? ''}`) : event === 'unloaded' ? log.info({ model: model.path }, `unloaded ${model.id}`) : undefined),
    load: async ({ id, path }, onProgress) => {
      const startedAt = performance.now();
      log.info({ model: path }, `loading ${id} from ${path}`);
      const logProgress = loadProgressLogger(log, id, startedAt);
      const llama = await LlamaCppEngine.create({
        modelPath: path,
        modelId: id,
        llama: binding,
        gpu: config.gpu,
        threads: config.threads,
        sequences: config.sequences,
        contextSize: contextSizeFor(path),
        queueLength: config.queueLength,
        defaultMaxTokens: config.maxTokens,
        log: llamaLog,
        chatWrappers,
        onLoadProgress: (fraction) => {
          onProgress(fraction);
          logProgress(fraction);
        },
      });
      const loadSeconds = (performance.now() - startedAt) / 1000;
      loadTime(llama.name, id, loadSeconds);
      const seconds = loadSeconds.toFixed(1);
      log.info(
        { model: path, template: llama.chatTemplate, contextLength: llama.contextLength, sequences: config.sequences, threads: config.threads, loadSeconds: Number(seconds) },
        `loaded ${id} in ${seconds} s (context ${llama.contextLength} tokens × ${config.sequences} sequences, template ${llama.chatTemplate})`,
      );
      return llama;
    },
  });
}

/** Logs a slow load at each quarter, so a terminal shows it moving; a load under a second says nothing until it is done. */
function loadProgressLogger(log: Logger, modelId: string, startedAt: number): (fraction: number) => void {
  let logged = 0;
  return (fraction) => {
    const quarter = Math.floor(fraction * 4);
    if (quarter <= logged || quarter >= 4 || performance.now() - startedAt < 1000) return;
    logged = quarter;
    log.info({ progress: quarter / 4 }, `loading ${modelId}: ${quarter * 25}%`);
  };
}
