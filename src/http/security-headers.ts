/**
 * A strict policy: the page runs only its own script and talks only to this
 * server, so model output that slips through as HTML still cannot run or leak.
 * `default-src 'self'` is also what allows the page's service worker (`worker-src`) and its web app
 * manifest (`manifest-src`): both are this server's own files, so neither needs a directive of its own.
 */
export const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ');

/** The headers of every page this server serves (the chat page, the seed page, `/docs`). */
export const securityHeaders = {
  'content-security-policy': contentSecurityPolicy,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;
