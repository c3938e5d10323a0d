/**
 * Registers the service worker that keeps the page's shell for offline use (web/service-worker/shell.ts,
 * built as /sw.js). Only in a build: the dev server has no /sw.js, and a worker must not serve stale code there.
 */
export function registerShellWorker(): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  window.addEventListener('load', () => {
    // Not installable then, but the page itself works the same: nothing to tell the person.
    navigator.serviceWorker.register('/sw.js').catch(() => undefined);
  });
}
