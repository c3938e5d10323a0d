import type { FastifyInstance } from 'fastify';
import FindMyWay, { type HTTPMethod } from 'find-my-way';

/** Methods worth naming in an `Allow` header. */
const METHODS: readonly HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** What the second router knows of a URL fastify could not route. */
export interface RouteTable {
  /** The methods some route serves this URL for. */
  allowedMethods(url: string): HTTPMethod[];
  /** The pattern of a route that serves this URL for some method (`/v1/models` for `/%761/models`), if any. */
  patternOf(url: string): string | undefined;
}

/**
 * Keeps a second router with every route's path, so that a request fastify could not route can be told
 * apart: a path served for other methods (405 with `Allow`, as HTTP asks) from a path served for none (404),
 * and so that the key check sees the route such a request spells, before either answer. Fastify's own router
 * answers both with its not-found handler. Must be installed before routes are added.
 */
export function trackAllowedMethods(app: FastifyInstance): RouteTable {
  const router = FindMyWay({ ignoreTrailingSlash: false, ignoreDuplicateSlashes: false });
  app.addHook('onRoute', (route) => {
    // A catch-all (CORS's preflight route is `OPTIONS *`) would make every unknown path look served.
    if (route.url === '*' || route.url === '/*') return;
    for (const given of [route.method].flat()) {
      const method = given.toUpperCase() as HTTPMethod;
      // Fastify adds the HEAD twin of a GET route itself; a path is added once per method.
      if (!METHODS.includes(method) || router.hasRoute(method, route.url)) continue;
      router.on(method, route.url, () => undefined, { pattern: route.url });
    }
  });
  const pathOf = (url: string): string => url.split('?')[0] ?? url;
  return {
    allowedMethods: (url) => METHODS.filter((method) => router.find(method, pathOf(url)) !== null),
    patternOf: (url) => {
      for (const method of METHODS) {
        const store: unknown = router.find(method, pathOf(url))?.store;
        if (typeof store === 'object' && store !== null && 'pattern' in store && typeof store.pattern === 'string') return store.pattern;
      }
      return undefined;
    },
  };
}
