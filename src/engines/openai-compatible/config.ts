import { z } from 'zod';
import type { OpenAICompatibleEngineOptions } from './engine.js';

const baseUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL such as http://host:8000/v1' })
  .refine((value) => {
    const url = URL.parse(value);
    return url === null || (url.username === '' && url.password === '');
  }, 'must not contain credentials; put the key in the environment variable named by apiKeyEnv')
  .refine((value) => {
    const url = URL.parse(value);
    return url === null || (url.search === '' && url.hash === '');
  }, 'must not have a query or fragment')
  // Paths are appended to it (`/chat/completions`), so a trailing slash would double up.
  .transform((value) => value.replace(/\/+$/, ''));

/** One upstream OpenAI-compatible server, as written in the config file or built from `--upstream`. */
export const upstreamConfigSchema = z
  .object({
    name: z.string().min(1).max(100),
    baseUrl: baseUrlSchema,
    /** The environment variable holding the API key; the key itself never appears in config. */
    apiKeyEnv: z.string().min(1).optional(),
    /** Model ids it serves; when absent they are discovered from `GET /models` at start. */
    models: z.array(z.string().min(1)).min(1).optional(),
    stallTimeoutMs: z.number().int().positive().default(30_000),
    totalTimeoutMs: z.number().int().positive().default(600_000),
    connectTimeoutMs: z.number().int().positive().optional(),
  })
  .strict();

export type UpstreamConfig = z.output<typeof upstreamConfigSchema>;

/**
 * Parses the `--upstream` flag: `http://host:8000/v1` or `name=http://host:8000/v1`.
 * The name defaults to the URL's host:port. Throws an Error naming the flag when the value is unusable.
 */
export function parseUpstreamFlag(value: string): UpstreamConfig {
  const equals = value.indexOf('=');
  const scheme = value.indexOf('://');
  // An '=' after the scheme belongs to the URL, not to a name.
  const named = equals > 0 && (scheme === -1 || equals < scheme);
  const url = named ? value.slice(equals + 1) : value;
  let name = named ? value.slice(0, equals) : '';
  if (!named) {
    try {
      name = new URL(url).host;
    } catch {
      // Reported below as a bad baseUrl.
    }
  }
  // An unparseable URL leaves no default name; report only the URL, which is the real problem.
  const parsed = upstreamConfigSchema.safeParse({ name: named || name !== '' ? name : 'upstream', baseUrl: url });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'value'} ${issue.message}`).join('; ');
    // The value is not echoed: it may hold credentials (rejected above, but printed to logs first otherwise).
    throw new Error(`--upstream${name === '' ? '' : ` (${name})`}: ${issues} (expected URL or name=URL, e.g. vllm=http://host:8000/v1)`);
  }
  return parsed.data;
}

/**
 * Reads the API key from the environment variable the config names. Throws
 * when that variable is unset, naming the variable (never a value), because a
 * silently missing key shows up later as a confusing upstream 401.
 */
export function resolveUpstreamApiKey(config: UpstreamConfig, env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (config.apiKeyEnv === undefined) return undefined;
  const key = env[config.apiKeyEnv];
  if (key === undefined || key === '') {
    throw new Error(`upstream "${config.name}": environment variable ${config.apiKeyEnv} (apiKeyEnv) is not set`);
  }
  return key;
}

/** The engine options for an upstream, with its key resolved from `env`. */
export function upstreamEngineOptions(config: UpstreamConfig, env: Readonly<Record<string, string | undefined>>): OpenAICompatibleEngineOptions {
  const apiKey = resolveUpstreamApiKey(config, env);
  return {
    name: config.name,
    baseUrl: config.baseUrl,
    stallTimeoutMs: config.stallTimeoutMs,
    totalTimeoutMs: config.totalTimeoutMs,
    ...(apiKey === undefined ? {} : { apiKey }),
    ...(config.models === undefined ? {} : { models: config.models }),
    ...(config.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: config.connectTimeoutMs }),
  };
}
