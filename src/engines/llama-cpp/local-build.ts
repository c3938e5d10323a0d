import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { getLlama, type Llama } from 'node-llama-cpp';
import type { EngineRuntime } from '../contract.js';
import { applyDispatchPatch, dispatchLoopState, revertDispatchPatch } from './dispatch-patch.js';

/**
 * llama.cpp compiled on this machine, by node-llama-cpp's own build (`parlance engine build`), against the
 * prebuilt binaries its npm packages ship. The prebuilt Linux x64 CPU variants are compiled by GCC 11, whose
 * F32 matrix kernel spills its accumulators to the stack; a build with this machine's compiler, native CPU
 * flags and OpenMP prefills faster and batches sequences better (docs/decisions/embedded-engine.md).
 * node-llama-cpp's `getLlama` loads a local build before a prebuilt one, `build: 'never'` included, so a
 * server started after the build uses it without any option.
 */

export type GpuChoice = 'auto' | 'cuda' | 'vulkan' | 'metal' | 'off';

/** What the binding loaded, as an operator needs it (`/health`, `parlance engine status`). */
export type LlamaBinary = EngineRuntime;

const require = createRequire(import.meta.url);

/** node-llama-cpp's own folder: its bundled llama.cpp source, and the local builds, live there. */
export function bindingPackageDir(): string {
  return dirname(dirname(require.resolve('node-llama-cpp')));
}

export function bindingVersion(): string {
  const manifest = JSON.parse(readFileSync(join(bindingPackageDir(), 'package.json'), 'utf8')) as { version?: unknown };
  return typeof manifest.version === 'string' ? manifest.version : 'unknown';
}

/** Read once: the module loaded is the file as it was at start, whatever a build running meanwhile writes. */
let loadedDispatchLoop: LlamaBinary['dispatchLoop'] | undefined;

export function describeBinding(llama: Llama): LlamaBinary {
  loadedDispatchLoop ??= dispatchLoopState(bindingPackageDir());
  return {
    binary: llama.buildType === 'localBuild' ? 'local build' : 'prebuilt',
    gpu: llama.gpu,
    release: llama.llamaCppRelease.release,
    dispatchLoop: loadedDispatchLoop,
  };
}

/**
 * The binary a server started now would load, with the same options as the server (`build: 'never'`):
 * node-llama-cpp loads it without initialising llama.cpp (its `dryRun`), so this takes about a second.
 */
export async function probeBinding(gpu: GpuChoice): Promise<LlamaBinary> {
  const llama = await getLlama({ gpu: gpu === 'off' ? false : gpu, build: 'never', dryRun: true, progressLogs: false });
  return { ...describeBinding(llama), dispatchLoop: dispatchLoopState(bindingPackageDir()) };
}

/** A finished local build on disk: node-llama-cpp names its folder after the platform, the backend and any custom CMake options. */
export interface LocalBuild {
  readonly name: string;
  readonly path: string;
  readonly builtAt: Date;
}

export function localBuilds(): LocalBuild[] {
  const root = join(bindingPackageDir(), 'llama', 'localBuilds');
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(root, entry.name, 'buildDone.status')))
    .map((entry) => ({ name: entry.name, path: join(root, entry.name), builtAt: statSync(join(root, entry.name, 'buildDone.status')).mtime }));
}

/**
 * Builds under way: node-llama-cpp holds a lock directory beside the build's folder and touches it every 5 s
 * (stale after 10 s). While it is held, `getLlama` waits for the build: a server starting then waits too.
 */
export function buildsUnderWay(now = Date.now()): string[] {
  const root = join(bindingPackageDir(), 'llama', 'localBuilds');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => name.endsWith('.lock') && now - statSync(join(root, name)).mtimeMs < 10_000)
    .map((name) => name.slice(0, -'.lock'.length));
}

/** The llama.cpp source node-llama-cpp bundles as a git bundle, and the release it is: a build needs nothing else. */
export interface BundledSource {
  readonly bundle: string;
  readonly release: string;
}

export function bundledSource(): BundledSource | undefined {
  const llamaDir = join(bindingPackageDir(), 'llama');
  const bundle = join(llamaDir, 'gitRelease.bundle');
  const releaseFile = join(llamaDir, 'binariesGithubRelease.json');
  if (!existsSync(bundle) || !existsSync(releaseFile)) return undefined;
  const { release } = JSON.parse(readFileSync(releaseFile, 'utf8')) as { release?: unknown };
  // "latest" would mean asking GitHub which release that is: not offline.
  if (typeof release !== 'string' || release === 'latest') return undefined;
  return { bundle, release };
}

function onPath(command: string): boolean {
  const names = process.platform === 'win32' ? [`${command}.exe`, `${command}.cmd`] : [command];
  return (process.env['PATH'] ?? '').split(delimiter).some((dir) => dir !== '' && names.some((name) => existsSync(join(dir, name))));
}

/**
 * What the build needs that is missing, each with why. node-llama-cpp would download CMake itself when it
 * finds none: refused here instead, so that the build never reaches the network.
 */
export function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (!onPath('cmake')) missing.push('cmake (node-llama-cpp would otherwise download one)');
  if (!onPath('git')) missing.push('git (to unpack the bundled llama.cpp source)');
  if (process.platform !== 'win32') {
    if (!['c++', 'g++', 'clang++'].some(onPath)) missing.push('a C++ compiler (g++ or clang++)');
    if (!onPath('make')) missing.push('make');
  }
  return missing;
}

/** Environment variables that would send node-llama-cpp's build to GitHub rather than the bundled source. */
function networkEnvironment(): string[] {
  return ['NODE_LLAMA_CPP_REPO', 'NODE_LLAMA_CPP_REPO_RELEASE'].filter((name) => (process.env[name] ?? '') !== '');
}

export interface BuildOptions {
  readonly gpu: GpuChoice;
  /** Apply the dispatch-loop patch too (dispatch-patch.ts). */
  readonly patchDispatch: boolean;
}

export interface BuildResult {
  /** What a server started now loads: the new build, unless something went wrong. */
  readonly binary: LlamaBinary;
  /** Why the dispatch loop was left as shipped, when it was. */
  readonly patchNote?: string;
}

export class BuildRefused extends Error {}

/** Throws {@link BuildRefused} with the reason when the build could not run offline here; else the source it builds. */
export function checkBuildable(): BundledSource {
  const source = bundledSource();
  if (source === undefined) throw new BuildRefused(`node-llama-cpp ${bindingVersion()} has no bundled llama.cpp source (llama/gitRelease.bundle) to build from offline`);
  const missing = missingPrerequisites();
  if (missing.length > 0) throw new BuildRefused(`the build needs ${missing.join(', ')}; install them and run it again`);
  const env = networkEnvironment();
  if (env.length > 0) throw new BuildRefused(`${env.join(' and ')} would make node-llama-cpp fetch llama.cpp from GitHub; unset them to build the bundled source`);
  return source;
}

/**
 * Unpacks the bundled llama.cpp source and compiles it with node-llama-cpp's own build (its
 * `source download`, offline from the bundle), writing its progress to the terminal. Tens of minutes of CPU.
 */
export async function buildForThisMachine(options: BuildOptions): Promise<BuildResult> {
  const source = checkBuildable();
  // Loaded here: its CLI modules (yargs, ora, simple-git) are nothing a server needs.
  const { DownloadLlamaCppCommand } = await import('node-llama-cpp/commands');
  await DownloadLlamaCppCommand({
    repo: 'ggml-org/llama.cpp',
    release: source.release,
    gpu: options.gpu === 'off' ? false : options.gpu,
    noBundle: false,
    noUsageExample: true,
  });
  let patchNote: string | undefined;
  if (options.patchDispatch) patchNote = await applyDispatchPatch(bindingPackageDir());
  return { binary: await probeBinding(options.gpu), ...(patchNote === undefined ? {} : { patchNote }) };
}

/** Deletes every local build and the unpacked source, and puts the dispatch loop back as shipped: the prebuilt binaries load again. */
export async function removeLocalBuilds(): Promise<LocalBuild[]> {
  const builds = localBuilds();
  const llamaDir = join(bindingPackageDir(), 'llama');
  await rm(join(llamaDir, 'localBuilds'), { recursive: true, force: true });
  await rm(join(llamaDir, 'llama.cpp'), { recursive: true, force: true });
  await rm(join(llamaDir, 'lastBuild.json'), { force: true });
  await revertDispatchPatch(bindingPackageDir());
  return builds;
}
