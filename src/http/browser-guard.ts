/**
 * Keeps web pages of other sites out (see docs/security.md). A browser is the one client that can be made to
 * send requests its user did not mean to: any page can post a form here, and a page whose name an attacker
 * re-points at 127.0.0.1 (DNS rebinding) can even read the answers, since to the browser it is then same-origin.
 *
 * - `Host` must name this server: a loopback name (`localhost`, `*.localhost`), an IP address (a rebinding
 *   needs a name the attacker controls; an address cannot be re-pointed), the bound `--host`, or a name in
 *   `--allowed-hosts`. Every route, every method: the page itself must not load under a foreign name.
 * - A request that changes state (anything but GET, HEAD, OPTIONS) with an `Origin` must come from this server's
 *   own page (the origin's host is the request's `Host`, or an allowed host name) or from an origin that
 *   `--cors-origin` allows. Clients that send no `Origin` (SDKs, curl, servers) are not browsers' cross-site
 *   requests and pass.
 *
 * The refusals are ParlanceErrors thrown from an `onRequest` hook, so each route's own error handler answers
 * them in its dialect's shape.
 */
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ParlanceError } from '../errors.js';

export interface BrowserGuardOptions {
  /** The address the server listens on (`--host`). */
  readonly boundHost: string;
  /** `--allowed-hosts`: names, `.domain` suffixes, or `*`. */
  readonly allowedHosts: readonly string[];
  /** `--cors-origin`: exact origins, or `*`. */
  readonly corsOrigins: readonly string[];
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);
const wildcardAddresses = new Set(['0.0.0.0', '::', '[::]', '']);

/** The host name of a `Host` header value (port and IPv6 brackets removed, lower case, no trailing dot); undefined when malformed. */
export function hostName(header: string): string | undefined {
  const value = header.trim().toLowerCase();
  const match = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9.\-_]+))(?::\d{1,5})?$/.exec(value);
  if (match === null) return undefined;
  const [, ipv6, name] = match;
  if (ipv6 !== undefined) return isIP(ipv6) === 6 ? ipv6 : undefined;
  const bare = name?.replace(/\.$/, '');
  return bare === undefined || bare === '' ? undefined : bare;
}

function nameAllowed(name: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) => entry === '*' || entry === name || (entry.startsWith('.') && (name.endsWith(entry) || name === entry.slice(1))));
}

/** Whether a `Host` (or an origin's host) names this server; see the module comment. */
export function hostAllowed(name: string, options: BrowserGuardOptions): boolean {
  if (name === 'localhost' || name.endsWith('.localhost') || isIP(name) !== 0) return true;
  const bound = options.boundHost.toLowerCase();
  if (!wildcardAddresses.has(bound) && name === bound.replace(/^\[|\]$/g, '')) return true;
  return nameAllowed(name, options.allowedHosts);
}

/** Whether a state-changing request carrying `origin` may go on; see the module comment. */
export function originAllowed(origin: string, host: string | undefined, options: BrowserGuardOptions): boolean {
  if (options.corsOrigins.includes('*') || options.corsOrigins.includes(origin)) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // `null` (a sandboxed frame, a file: page) and anything malformed
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (host !== undefined && url.host === host.trim().toLowerCase()) return true;
  // The page under a name the operator allowed (a reverse proxy that rewrites Host, say) is this server's page.
  return options.allowedHosts.length > 0 && nameAllowed(url.hostname.replace(/^\[|\]$/g, ''), options.allowedHosts);
}

function firstHeader(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function installBrowserGuard(app: FastifyInstance, options: BrowserGuardOptions): void {
  app.addHook('onRequest', async (request) => {
    const host = firstHeader(request, 'host');
    // No Host at all (HTTP/1.0): no browser sends that.
    if (host !== undefined) {
      const name = hostName(host);
      if (name === undefined || !hostAllowed(name, options)) {
        throw new ParlanceError(
          'host_not_allowed',
          `This server does not answer to the host name in the Host header (${JSON.stringify(host.slice(0, 100))}), which protects it from DNS rebinding. If that is a name it is served under, start it with --allowed-hosts ${name ?? '<name>'} (PARLANCE_ALLOWED_HOSTS).`,
        );
      }
    }
    if (safeMethods.has(request.method)) return;
    const origin = firstHeader(request, 'origin');
    if (origin === undefined || originAllowed(origin, host, options)) return;
    throw new ParlanceError(
      'origin_not_allowed',
      `A web page of another origin (${JSON.stringify(origin.slice(0, 200))}) may not send ${request.method} requests here. To let it, start the server with --cors-origin ${origin.slice(0, 200)} (PARLANCE_CORS_ORIGINS).`,
    );
  });
}
