import { readFileSync, renameSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { chatWrappers, getModuleVersion, resolveChatWrapper, type BuiltInChatWrapperType, type LlamaModel } from 'node-llama-cpp';

type BuiltInChatWrapper = BuiltInChatWrapperType;
type WrapperType = keyof typeof chatWrappers;
type WrapperClass = new (settings?: object) => BuiltInChatWrapper;

/**
 * Which chat wrapper `resolveChatWrapper` chose for a model file: its type and, for a specialised wrapper, which
 * of the settings it tries (`_getOptionConfigurationsToTestIfCanSupersedeJinjaTemplate`) it took (-1: none).
 */
interface Choice {
  readonly type: WrapperType;
  readonly config: number;
}

/**
 * The chat wrapper node-llama-cpp resolves for a model, remembered per model file (path, size and modification
 * time, and the library's version) in a small JSON file, so that a later start builds it directly.
 *
 * Why: for a GGUF with a jinja template, `resolveChatWrapper` renders the template against every specialised
 * wrapper it knows, under several settings each, to find one that writes the same text (~0.8 s of CPU on a
 * quiet 2-core machine for ChatML, the most of a start's CPU after module loading). The answer depends only on
 * the file and the library, so it is the same at every start. A choice that cannot be rebuilt exactly (a
 * wrapper whose settings are not among those it tries) is not remembered, and is resolved every time as before.
 */
export class ChatWrapperChoices {
  private entries: Record<string, Choice> | undefined;

  /** `file`: where the choices are kept (the data directory); undefined: in memory only. */
  constructor(private readonly file: string | undefined) {}

  /** The model's chat wrapper: rebuilt from the remembered choice, or resolved (and remembered). */
  async resolve(model: LlamaModel, modelPath: string): Promise<BuiltInChatWrapper> {
    const key = await fileKey(modelPath);
    const known = key === undefined ? undefined : this.read()[key];
    if (known !== undefined) {
      const rebuilt = rebuild(model, known);
      if (rebuilt !== undefined) return rebuilt;
    }
    const wrapper = resolveChatWrapper(model);
    const choice = key === undefined ? undefined : choiceOf(wrapper);
    if (key !== undefined && choice !== undefined) this.remember(key, choice);
    return wrapper;
  }

  private read(): Record<string, Choice> {
    if (this.entries !== undefined) return this.entries;
    this.entries = {};
    if (this.file === undefined) return this.entries;
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.file, 'utf8'));
      if (parsed !== null && typeof parsed === 'object') {
        for (const [key, value] of Object.entries(parsed)) if (isChoice(value)) this.entries[key] = value;
      }
    } catch {
      // No file yet, or one that is not ours to read: resolve as if nothing were known.
    }
    return this.entries;
  }

  private remember(key: string, choice: Choice): void {
    const entries = this.read();
    entries[key] = choice;
    // A models directory rarely holds more than a few dozen files; keep the newest 64.
    const kept = Object.fromEntries(Object.entries(entries).slice(-64));
    this.entries = kept;
    if (this.file === undefined) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const temporary = `${this.file}.${process.pid}.tmp`;
      writeFileSync(temporary, `${JSON.stringify(kept, null, 1)}\n`);
      renameSync(temporary, this.file);
    } catch {
      // A read-only data directory only costs the next start the resolution.
    }
  }
}

function isChoice(value: unknown): value is Choice {
  if (value === null || typeof value !== 'object') return false;
  const { type, config } = value as Record<string, unknown>;
  return typeof type === 'string' && Object.hasOwn(chatWrappers, type) && typeof config === 'number' && Number.isInteger(config);
}

/** Identifies the file's content closely enough (a changed file gets a new key) without reading it. */
async function fileKey(path: string): Promise<string | undefined> {
  try {
    const stats = statSync(path);
    return `${await getModuleVersion()}:${resolve(path)}:${stats.size}:${stats.mtimeMs}`;
  } catch {
    return undefined;
  }
}

/** The settings node-llama-cpp tries a specialised wrapper with, as (test, apply) pairs; those it applies, in order. */
function appliedSettings(Wrapper: unknown): (object | undefined)[] {
  const configurations = (Wrapper as { _getOptionConfigurationsToTestIfCanSupersedeJinjaTemplate?: () => unknown[] })._getOptionConfigurationsToTestIfCanSupersedeJinjaTemplate?.() ?? [];
  // As resolveChatWrapper reads them: a pair's second item (or {}), else the configuration itself.
  return configurations.map((configuration) => (Array.isArray(configuration) ? ((configuration[1] as object | undefined) ?? {}) : (configuration as object | undefined)));
}

/** What to remember of a resolved wrapper, when a rebuild from it gives an equal wrapper; undefined otherwise. */
function choiceOf(wrapper: BuiltInChatWrapper): Choice | undefined {
  const entry = Object.entries(chatWrappers).find(([, Wrapper]) => wrapper.constructor === Wrapper);
  if (entry === undefined) return undefined;
  const [type, Wrapper] = entry as [WrapperType, WrapperClass];
  // A jinja wrapper is rebuilt from the model's own template (and a template wrapper has settings we did not give).
  if (type === 'jinjaTemplate') return { type, config: -1 };
  if (type === 'template') return undefined;
  const candidates = [{}, ...appliedSettings(Wrapper)];
  for (let index = 0; index < candidates.length; index++) {
    try {
      if (isDeepStrictEqual(new Wrapper(candidates[index] ?? {}), wrapper)) return { type, config: index - 1 };
    } catch {
      // Settings this wrapper refuses on their own: not the ones it was built with.
    }
  }
  return undefined;
}

function rebuild(model: LlamaModel, choice: Choice): BuiltInChatWrapper | undefined {
  try {
    if (choice.type === 'jinjaTemplate') {
      const wrapper = resolveChatWrapper(model, { type: 'jinjaTemplate' });
      // Without a template node-llama-cpp falls back to its own choice: not what was remembered.
      return wrapper.constructor === chatWrappers.jinjaTemplate ? wrapper : undefined;
    }
    const Wrapper = chatWrappers[choice.type] as unknown as WrapperClass;
    const settings = choice.config < 0 ? {} : appliedSettings(Wrapper)[choice.config];
    if (settings === undefined && choice.config >= 0) return undefined;
    return new Wrapper(settings ?? {});
  } catch {
    return undefined;
  }
}
