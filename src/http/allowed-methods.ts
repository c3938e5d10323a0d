import type { FastifyInstance } from 'fastify';
import FindMyWay, { type HTTPMethod } from 'find-my-way';

/** Methods worth naming in an `Allow` header. */
const METHODS: readonly HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * Keeps a second router with every route's path, so that a request fastify could not route can be told
 * apart: a path served for other methods (405 with `Allow`, as HTTP asks) from a path served for none (404).
 * Fastify's own router answers both with its not-found handler. Must be installed before routes are added.
 */
export function trackAllowedMethods(app: FastifyInstance): (url: string) => HTTPMethod[] {
  const router = FindMyWay({ ignoreTrailingSlash: false, ignoreDuplicateSlashes: false });
  app.addHook('onRoute', (route) => {
    // A catch-all (CORS's preflight route is `OPTIONS *`) would make every unknown path look served.
    if (route.url === '*' || route.url === '/*') return;
    for (const given of [route.method].flat()) {
      const method = given.toUpperCase() as HTTPMethod;
      // Fastify adds the HEAD twin of a GET route itself; a path is added once per method.
      if (!METHODS.includes(method) || router.hasRoute(method, route.url)) continue;
      router.on(method, route.url, () => undefined);
    }
  });
  return (url) => {
    const path = url.split('?')[0] ?? url;
    return METHODS.filter((method) => router.find(method, path) !== null);
  };
}
