import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Builds the chat page (`vite build`) when `dist/web` is missing or older
 * than its sources, so `npm start` on a fresh clone and the browser tests
 * always serve a current page. Run directly (`tsx web/ensure-built.ts`) or
 * import `ensureWebBuilt`.
 */

const root = fileURLToPath(new URL('..', import.meta.url));
const builtIndex = join(root, 'dist', 'web', 'index.html');
const sources = [join(root, 'web'), join(root, 'src', 'protocol'), join(root, 'package-lock.json')];

async function newestChange(path: string): Promise<number> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const entry of await readdir(path)) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue;
    newest = Math.max(newest, await newestChange(join(path, entry)));
  }
  return newest;
}

/** True when dist/web exists and nothing it is built from changed since. */
export async function webBuildIsCurrent(): Promise<boolean> {
  if (!existsSync(builtIndex)) return false;
  const built = (await stat(builtIndex)).mtimeMs;
  const changes = await Promise.all(sources.map(newestChange));
  return changes.every((changed) => changed <= built);
}

/** Runs `vite build -c web/vite.config.ts`; rejects with its output when it fails. */
export function buildWeb(): Promise<void> {
  return new Promise((resolve, reject) => {
    const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
    const child = spawn(process.execPath, [vite, 'build', '-c', join(root, 'web', 'vite.config.ts'), '--logLevel', 'warn'], {
      cwd: root,
      // A production build whoever calls (vitest sets NODE_ENV=test, which would bundle React's development build).
      env: { ...process.env, NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`vite build failed (exit ${code}):\n${output}`))));
  });
}

export async function ensureWebBuilt(): Promise<'built' | 'current'> {
  if (await webBuildIsCurrent()) return 'current';
  await buildWeb();
  return 'built';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureWebBuilt().then(
    (result) => {
      if (result === 'built') console.log('built the chat page into dist/web');
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
