/**
 * Start-up failures a user can act on, each said in one line: what failed, why, and the flag that
 * changes it. `main.ts` wraps what each step of the start throws; `cli.ts` prints the message alone
 * (the stack only with --debug).
 */
import { portOwner } from './port-owner.js';

export class StartupError extends Error {
  override name = 'StartupError';
}

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

const reasons: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is not a directory',
  ENOSPC: 'no space left on the device',
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  ETIMEDOUT: 'timed out',
};

/** "permission denied (EACCES)", else the error's first line. */
export function reasonOf(error: unknown): string {
  const code = codeOf(error);
  if (code !== undefined && reasons[code]) return `${reasons[code]} (${code})`;
  // pg reports a refused connection to every address of a host as an AggregateError with no message.
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0]);
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]?.trim() || code || 'unknown error';
}

/** Why the server could not listen on host:port. */
export async function listenFailure(error: unknown, host: string, port: number): Promise<StartupError> {
  const code = codeOf(error);
  if (code === 'EADDRINUSE') {
    const owner = await portOwner(port).catch(() => undefined);
    const by = owner ? ` by ${owner.command} (pid ${owner.pid})` : '';
    return new StartupError(`port ${port} on ${host} is taken${by}; pick another with --port <number> (PARLANCE_PORT), or --port 0 for any free one`, { cause: error });
  }
  if (code === 'EACCES') return new StartupError(`not allowed to listen on port ${port} (ports below 1024 need privileges); pick another with --port <number> (PARLANCE_PORT)`, { cause: error });
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new StartupError(`cannot listen on ${host}: it is not an address of this machine; pick another with --host (PARLANCE_HOST)`, { cause: error });
  return new StartupError(`cannot listen on ${host}:${port}: ${reasonOf(error)}`, { cause: error });
}

/** Why the conversation store could not be opened: the data directory when it is the default, else the URL. */
export function storeFailure(error: unknown, where: { readonly url: string; readonly dataDir: string; readonly explicit: boolean }): StartupError {
  const code = codeOf(error);
  const fileProblem = code !== undefined && ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'ENOSPC', 'SQLITE_CANTOPEN', 'SQLITE_READONLY'].includes(code);
  if (!where.explicit && fileProblem) {
    const reason = code?.startsWith('SQLITE_') ? `cannot create or open ${where.url.replace(/^sqlite:/, '')} there (${code})` : reasonOf(error);
    return new StartupError(`cannot use the data directory ${where.dataDir}: ${reason}; pick another with --data-dir <path> (PARLANCE_DATA_DIR)`, { cause: error });
  }
  return new StartupError(`cannot open the conversation store ${where.url}: ${reasonOf(error)}; check --store <url> (PARLANCE_STORE)`, { cause: error });
}

/** Why the embedded engine could not load its model file. */
export function modelLoadFailure(error: unknown, path: string): StartupError {
  return new StartupError(`cannot load the model ${path}: ${reasonOf(error)}; pass another with --model <ref> (PARLANCE_MODEL)`, { cause: error });
}
