import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ParlanceError } from '../errors.js';

export interface ApiKey {
  readonly name: string;
  readonly key: string;
}

/** The routes a key protects: the APIs and their documentation. The page, its assets, /health and /ready stay public. */
function isProtected(path: string): boolean {
  return (
    path.startsWith('/v1/') || path === '/v1' || path === '/rerank' || path.startsWith('/api/') || path.startsWith('/parlance/') || path.startsWith('/metrics') || path.startsWith('/completion') || path === '/docs' || path.startsWith('/docs/')
  );
}

/** A percent-decoded path, as the router reads it; the text itself when it does not decode. */
function decodedPath(url: string): string {
  const path = url.split('?')[0] ?? url;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/**
 * Whether a request needs a key, judged by the route it reaches, never by the raw URL, which may spell the
 * same route differently (`/%761/models` is routed to `/v1/models`). A request no route takes (a wrong method,
 * say) is judged by the route it spells, so that the 404 or 405 it gets cannot map the API without a key.
 */
function needsKey(request: FastifyRequest, patternOf: (url: string) => string | undefined): boolean {
  const routed = request.routeOptions.url;
  if (routed !== undefined) return isProtected(routed);
  const pattern = patternOf(request.url);
  return (pattern !== undefined && isProtected(pattern)) || isProtected(decodedPath(request.url)) || isProtected(request.url.split('?')[0] ?? '');
}

function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match) return match[1]?.trim();
  }
  const header = request.headers['x-api-key'];
  const key = Array.isArray(header) ? header[0] : header;
  // An Authorization header of another scheme (a proxy's Basic credentials) is not a key; x-api-key may still carry one.
  return key ?? (authorization === undefined ? undefined : '');
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

declare module 'fastify' {
  interface FastifyRequest {
    /** The name of the API key the request presented, when keys are configured. */
    apiKeyName?: string;
  }
}

/**
 * One code path for every protected route: `Authorization: Bearer <key>` or
 * `x-api-key: <key>`. Keys are compared as SHA-256 digests in constant time,
 * so neither their length nor their content leaks through timing.
 */
export function installApiKeys(app: FastifyInstance, keys: readonly ApiKey[], patternOf: (url: string) => string | undefined = () => undefined): void {
  if (keys.length === 0) return;
  const known = keys.map((entry) => ({ name: entry.name, digest: digest(entry.key) }));
  app.addHook('onRequest', async (request) => {
    if (!needsKey(request, patternOf)) return;
    const presented = presentedKey(request);
    if (presented === undefined || presented === '') {
      throw new ParlanceError('invalid_api_key', 'This server needs an API key: send it as "Authorization: Bearer <key>" or "x-api-key: <key>".');
    }
    const candidate = digest(presented);
    const match = known.find((entry) => timingSafeEqual(entry.digest, candidate));
    if (!match) throw new ParlanceError('invalid_api_key', 'The API key is not valid.');
    request.apiKeyName = match.name;
  });
}
