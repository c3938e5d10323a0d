#!/usr/bin/env node
// Builds what is stale, and nothing else: the server (tsc → dist/src) and the chat page (vite → dist/web).
// Plain JavaScript on purpose: `npm start` runs it before anything is compiled, and starting tsx (or tsc)
// just to find that nothing changed would cost more than the server's own start. Types: ensure-built.d.mts.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const lockfile = join(root, 'npm-shrinkwrap.json');

/** What each part is built from, the file whose age stands for the build, and how to build it. */
export const targets = {
  server: {
    label: 'the server',
    sources: [join(root, 'src'), join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json'), lockfile],
    output: join(root, 'dist', 'src', 'cli.js'),
    command: [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')],
  },
  web: {
    label: 'the chat page',
    sources: [join(root, 'web'), join(root, 'src', 'protocol'), lockfile],
    output: join(root, 'dist', 'web', 'index.html'),
    command: [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '-c', join(root, 'web', 'vite.config.ts'), '--logLevel', 'warn'],
  },
};

/**
 * The newest modification time under a path (0 when it does not exist); dot-folders and node_modules are skipped.
 * Folders count too: deleting a source changes its folder's time. Synchronous on purpose: `npm start` waits on
 * this walk, and a few hundred stat calls in a row take a few milliseconds, where awaiting each one (a turn of
 * the event loop apiece) took ten times that.
 */
function newestChange(path) {
  const info = statSync(path, { throwIfNoEntry: false });
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const child = join(path, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestChange(child) : (statSync(child, { throwIfNoEntry: false })?.mtimeMs ?? 0));
  }
  return newest;
}

/** True when the part's output exists and nothing it is built from changed since. */
export async function isCurrent(name) {
  const target = targets[name];
  const built = statSync(target.output, { throwIfNoEntry: false })?.mtimeMs;
  if (built === undefined) return false;
  return target.sources.every((source) => newestChange(source) <= built);
}

/** Runs the part's build; rejects with its output when it fails. */
export function build(name) {
  const target = targets[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, target.command, {
      cwd: root,
      // A production build whoever calls (vitest sets NODE_ENV=test, which would bundle React's development build).
      env: { ...process.env, NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk.toString()));
    child.stderr.on('data', (chunk) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) return resolve();
      // tsc writes its output even when it finds errors: date it back, so the next start builds again.
      void utimes(target.output, 0, 0).catch(() => undefined).then(() => reject(new Error(`building ${target.label} failed (exit ${code}):\n${output}`)));
    });
  });
}

/** Builds the part when it is missing or stale. */
export async function ensureBuilt(name) {
  if (await isCurrent(name)) return 'current';
  await build(name);
  return 'built';
}

// `ensure-built.mjs [part…]` builds what is stale; `ensure-built.mjs --run <command…>` then runs the CLI in
// this same process (one Node start, not two, before the server's own).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const runAt = args.indexOf('--run');
  const parts = runAt < 0 ? args : args.slice(0, runAt);
  const names = parts.length > 0 ? parts : Object.keys(targets);
  try {
    for (const name of names) {
      if (!(name in targets)) throw new Error(`unknown part '${name}': ${Object.keys(targets).join(', ')}`);
      if (!(await isCurrent(name))) {
        process.stderr.write(`building ${targets[name].label}…\n`);
        await build(name);
      }
    }
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  if (runAt >= 0) {
    process.argv = [process.argv[0] ?? process.execPath, targets.server.output, ...args.slice(runAt + 1)];
    await import(pathToFileURL(targets.server.output).href);
  }
}
