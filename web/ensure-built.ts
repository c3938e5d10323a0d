/**
 * The chat page's side of `scripts/ensure-built.mjs`: builds `dist/web` when it is missing or older than its
 * sources, so `npm start` on a fresh clone and the browser tests always serve a current page.
 */
import { build, ensureBuilt, isCurrent } from '../scripts/ensure-built.mjs';

/** True when dist/web exists and nothing it is built from changed since. */
export const webBuildIsCurrent = (): Promise<boolean> => isCurrent('web');

/** Runs `vite build -c web/vite.config.ts`; rejects with its output when it fails. */
export const buildWeb = (): Promise<void> => build('web');

export const ensureWebBuilt = (): Promise<'built' | 'current'> => ensureBuilt('web');
