/**
 * What `npm pack` ships is what `npx parlance` and `npm i -g` run: the built server and the built page,
 * nothing to compile. The tarball is packed here and unpacked in an empty folder, its dependencies this
 * checkout's; and `npx <tarball>` installs it for real in an empty folder, from npm's cache only
 * (`--offline`: tests never touch the registry), which `npm ci` filled.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import semver from 'semver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../scripts/ensure-built.mjs';
import { startChild, type ChildServer } from '../adversarial/helpers.js';
import { repoRoot } from '../fixtures/cli.js';

const run = promisify(execFile);
let dir = '';
let files: string[] = [];
let packageDir = '';
let tarball = '';
const children: ChildServer[] = [];

beforeAll(async () => {
  await ensureBuilt('server');
  await ensureBuilt('web');
  dir = await mkdtemp(join(tmpdir(), 'parlance-pack-'));
  // --ignore-scripts: prepack would build again; the build is current (above).
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: repoRoot });
  const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  files = packed?.files.map((file) => file.path) ?? [];
  tarball = join(dir, packed?.filename ?? '');
  packageDir = join(dir, 'empty', 'parlance');
  await mkdir(packageDir, { recursive: true });
  await run('tar', ['xzf', join(dir, packed?.filename ?? ''), '-C', packageDir, '--strip-components', '1']);
  await symlink(join(repoRoot, 'node_modules'), join(packageDir, 'node_modules'));
}, 180_000);
afterAll(async () => {
  for (const child of children) if (child.child.exitCode === null) child.child.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
  await removeNpxInstalls(tarball);
});

/** npx keeps what it installed in npm's cache (`_npx/<hash>`, ~0.9 GB with llama.cpp's binaries): this run's goes. */
async function removeNpxInstalls(spec: string): Promise<void> {
  if (!spec) return;
  const npx = join((await run('npm', ['config', 'get', 'cache'])).stdout.trim(), '_npx');
  for (const entry of await readdir(npx).catch(() => [])) {
    const manifest = await readFile(join(npx, entry, 'package.json'), 'utf8').catch(() => '');
    if (manifest.includes(spec)) await rm(join(npx, entry), { recursive: true, force: true });
  }
}

describe('the npm package', () => {
  it('holds the built server and page, and no sources or tests', () => {
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/src/cli.js', 'dist/src/main.js', 'dist/web/index.html']));
    expect(files.some((file) => /^dist\/web\/assets\/index-[\w-]+\.js$/.test(file))).toBe(true);
    expect(files.filter((file) => /^(src|test|web|bench)\//.test(file) || file.endsWith('.ts') || file.endsWith('.map'))).toEqual([]);
  });

  // npm installs a published package's npm-shrinkwrap.json as is (npx parlance, npm i -g parlance), so those
  // installs get the versions CI tested, not whatever is newest: newer releases of two transitive packages
  // (content-disposition 3.1, cookie 2.0.2) declare Node >= 22 and warned EBADENGINE on Node 20.
  it('pins every dependency with its shrinkwrap, each one installable on the oldest Node the package supports', async () => {
    expect(files).toContain('npm-shrinkwrap.json');
    const manifest = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { engines: { node: string } };
    const oldest = semver.minVersion(manifest.engines.node)?.version ?? '';
    expect(oldest).toMatch(/^20\./);
    const shrinkwrap = JSON.parse(await readFile(join(packageDir, 'npm-shrinkwrap.json'), 'utf8')) as {
      packages: Record<string, { version?: string; dev?: boolean; engines?: { node?: string } | string[] }>;
    };
    const installed = Object.entries(shrinkwrap.packages).filter(([path, entry]) => path !== '' && entry.dev !== true);
    expect(installed.length).toBeGreaterThan(50);
    expect(installed.every(([, entry]) => typeof entry.version === 'string')).toBe(true);
    const refusing = installed.filter(([, entry]) => {
      const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      return range !== undefined && !semver.satisfies(oldest, range);
    });
    expect(refusing.map(([path, entry]) => `${path}@${entry.version ?? '?'}`)).toEqual([]);
  });

  it('its bin runs from an empty folder: --version', async () => {
    const manifest = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    const bin = join(packageDir, manifest.bin['parlance'] ?? '');
    expect((await readFile(bin, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    const { stdout } = await run(process.execPath, [bin, '--version'], { cwd: join(dir, 'empty') });
    expect(stdout).toBe(`${manifest.version}\n`);
  });

  // Slow: npm installs every dependency, and better-sqlite3 compiles SQLite when its prebuilt binary cannot be
  // downloaded (here, offline): 505 s on the 2-core machine at a load average of 12-15, hence the long bound.
  it('runs with npx from an empty folder, installed from npm\'s cache: npx <tarball> --version', async (context) => {
    const empty = join(dir, 'npx-empty');
    await mkdir(empty);
    const result = await run('npm', ['exec', '--yes', '--offline', '--package', tarball, '--', 'parlance', '--version'], { cwd: empty, timeout: 840_000, maxBuffer: 16 << 20 }).catch(
      (error: { code?: unknown; stdout?: string; stderr?: string }) => ({ failed: error, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
    );
    if ('failed' in result) {
      // Only a package missing from the cache is a reason not to run (the cache is filled by `npm ci`); anything else fails.
      const missing = /ENOTCACHED[^\n]*/.exec(result.stderr);
      if (missing) return context.skip(`npm's cache lacks a dependency, and tests stay offline (run npm ci first): ${missing[0]}`);
      throw new Error(`npx failed (${String(result.failed.code)}):\n${result.stderr.slice(-4000)}`);
    }
    const manifest = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { version: string };
    expect(result.stdout).toBe(`${manifest.version}\n`);
  }, 900_000);

  it('serves the prebuilt chat page from the package', async () => {
    const child = await startChild(['--no-embedded', '--scripted', '--data-dir', join(dir, 'data')], {}, join(packageDir, 'dist', 'src', 'cli.js'));
    children.push(child);
    const page = await (await fetch(`${child.url}/`)).text();
    expect(page).toBe(await readFile(join(packageDir, 'dist', 'web', 'index.html'), 'utf8'));
    child.child.kill('SIGTERM');
    expect(await child.exited(10_000)).toBe(0);
  });
});
