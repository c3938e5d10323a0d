import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { z } from 'zod';
import { configSchema, optionTable, type Config, type OptionKey } from './schema.js';

/** Raised when configuration is invalid; the message names the option, its env var and its flag. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ConfigSources {
  /** Values from a config file (JSON or YAML), by option key. */
  readonly file?: Record<string, unknown>;
  /** The process environment (only `PARLANCE_*` names from the option table are read). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Values given on the command line or by a caller (tests), by option key. */
  readonly overrides?: Partial<Record<OptionKey, unknown>>;
}

function fromEnv(env: Readonly<Record<string, string | undefined>>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [key, option] of Object.entries(optionTable)) {
    const value = env[option.env];
    if (value !== undefined && value !== '') values[key] = value;
  }
  return values;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path[0];
  if (typeof key === 'string' && key in optionTable) {
    const option = optionTable[key as OptionKey];
    return `${key} (${option.flag.split(' ')[0]}, ${option.env}): ${issue.message}`;
  }
  return `${issue.path.join('.') || 'config'}: ${issue.message}`;
}

/** Merges file < env < overrides, validates once, and freezes the result. */
export function resolveConfig(sources: ConfigSources): Config {
  const merged: Record<string, unknown> = { ...sources.file, ...fromEnv(sources.env ?? {}) };
  for (const [key, value] of Object.entries(sources.overrides ?? {})) {
    if (value !== undefined) merged[key] = value;
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(`invalid configuration:\n  ${parsed.error.issues.map(describeIssue).join('\n  ')}`);
  }
  return Object.freeze(parsed.data);
}

/**
 * Reads a config file: `.yaml`/`.yml` as YAML, anything else as JSON. Either way the top level must be an
 * object of options by key (`port: 8080`); its values are validated with the rest of the configuration.
 */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const yaml = ['.yaml', '.yml'].includes(extname(path).toLowerCase());
  const format = yaml ? 'YAML' : 'JSON';
  let value: unknown;
  try {
    // YAML's merge keys and custom tags stay off: a config file is plain data.
    // The YAML parser is loaded only for a YAML file (it is ~0.1 s of a start's module loading).
    value = yaml ? (await import('yaml')).parse(text, { merge: false, maxAliasCount: 100 }) : JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid ${format}: ${(error as Error).message.split('\n')[0] ?? ''}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`config file ${path} must hold a ${format} object of options by name (e.g. ${yaml ? '"port: 8080"' : '{"port": 8080}'})`);
  }
  return value as Record<string, unknown>;
}
