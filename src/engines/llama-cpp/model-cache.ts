/**
 * What the models directory holds, for `parlance list` and `parlance rm`: every GGUF under it (downloads
 * laid out by {@link cachePathFor}, the demo model, files put there by hand), named by the id the server
 * would serve it under and, for downloads, by the reference that fetches it again.
 */
import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { modelIdFromPath } from './model-source.js';

export interface CachedModel {
  /** The id clients send as `model` when the server serves this file. */
  readonly id: string;
  /** `hf:owner/repo/file.gguf` for a Hugging Face download; the path under the models dir otherwise. */
  readonly ref: string;
  readonly path: string;
  readonly bytes: number;
  readonly modified: Date;
}

/** Downloads still in flight (download.ts writes `<file>.gguf.part`) are not models yet. */
const isModelFile = (name: string): boolean => /\.gguf$/i.test(name);

async function* ggufFiles(dir: string, depth = 0): AsyncGenerator<string> {
  // The layout is at most hf/<owner>/<repo>/<nested file path>; the bound keeps a symlink loop finite.
  if (depth > 12) return;
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* ggufFiles(path, depth + 1);
    else if (isModelFile(entry.name)) yield path;
  }
}

function refOf(modelsDir: string, path: string): string {
  const parts = relative(modelsDir, path).split(sep);
  if (parts[0] === 'hf' && parts.length >= 4) {
    const [, owner, repoDir = '', ...file] = parts;
    const at = repoDir.indexOf('@');
    const repo = at < 0 ? repoDir : repoDir.slice(0, at);
    const revision = at < 0 ? '' : `#${decodeURIComponent(repoDir.slice(at + 1))}`;
    return `hf:${owner}/${repo}/${file.join('/')}${revision}`;
  }
  return parts.join('/');
}

/** Every model in the directory, by id. A directory that does not exist holds none. */
export async function listCachedModels(modelsDir: string): Promise<CachedModel[]> {
  const root = resolve(modelsDir);
  const models: CachedModel[] = [];
  for await (const path of ggufFiles(root)) {
    const info = await stat(path);
    models.push({ id: modelIdFromPath(path), ref: refOf(root, path), path, bytes: info.size, modified: info.mtime });
  }
  return models.sort((a, b) => a.id.localeCompare(b.id) || a.ref.localeCompare(b.ref));
}

/** The cached models a name means: its id, or its reference as `list` shows it. */
export async function findCachedModels(modelsDir: string, name: string): Promise<CachedModel[]> {
  const wanted = name.trim().replace(/\.gguf$/i, '').toLowerCase();
  const models = await listCachedModels(modelsDir);
  const byRef = models.filter((model) => model.ref === name.trim());
  return byRef.length > 0 ? byRef : models.filter((model) => model.id.toLowerCase() === wanted);
}

/** Deletes a cached model, then the folders of the layout it leaves empty (never the models dir itself). */
export async function removeCachedModel(modelsDir: string, model: CachedModel): Promise<void> {
  const root = resolve(modelsDir);
  await rm(model.path);
  for (let dir = dirname(model.path); dir.startsWith(root + sep); dir = dirname(dir)) {
    const removed = await rmdir(dir).then(() => true, () => false);
    if (!removed) break;
  }
}
