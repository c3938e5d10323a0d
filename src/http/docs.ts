import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { packageVersion } from '../package-info.js';
import { securityHeaders } from './security-headers.js';

/**
 * The groups of `/docs`, by the path a route starts with; the first that matches wins. A new dialect's
 * routes join their group by their path alone; a route may still set its own `tags` or `summary`.
 */
const groups: readonly { readonly tag: string; readonly description: string; readonly prefixes: readonly string[]; readonly hidden?: true }[] = [
  { tag: 'Anthropic', description: "Anthropic's Messages API, for its SDK and the tools built on it", prefixes: ['/v1/messages'] },
  { tag: 'OpenAI', description: "OpenAI's API: chat completions, completions, responses, embeddings, models", prefixes: ['/v1/', '/rerank'] },
  { tag: 'Conversations', description: 'the conversation API the chat page uses: stored conversations, branches, replies that outlive the tab', prefixes: ['/parlance/api/', '/api/conversations', '/api/messages', '/api/search'] },
  { tag: 'Ollama', description: "Ollama's API, for clients that speak it", prefixes: ['/api/'] },
  { tag: 'Operations', description: 'liveness, readiness and Prometheus metrics', prefixes: ['/health', '/ready', '/metrics'] },
  { tag: 'Seed', description: "the endpoints of the FastAPI demo Parlance grew from, kept as they were", prefixes: ['/completion', '/stream-example', '/prompt_data'] },
  { tag: 'Chat page', description: 'the chat page', prefixes: ['/c/'] },
  // Static files: not an API.
  { tag: 'Files', description: 'static files', prefixes: ['/assets/', '/favicon', '/icon-', '/manifest.webmanifest', '/sw.js'], hidden: true },
];

/** How /docs lists the groups: the most used dialect first. */
const displayOrder = ['OpenAI', 'Anthropic', 'Ollama', 'Conversations', 'Operations', 'Seed', 'Chat page'];

/** One line per route, by `METHOD path` as fastify writes it. */
const summaries: Readonly<Record<string, string>> = {
  'POST /v1/chat/completions': 'Generate a chat reply, streamed (SSE) or whole',
  'GET /v1/chat/completions/:id/events': 'Resume a resumable chat completion stream (Last-Event-ID)',
  'POST /v1/completions': 'Continue a text prompt (the legacy completion)',
  'POST /v1/responses': 'Generate a reply with the Responses API',
  'GET /v1/responses/:id': 'Get a stored response',
  'DELETE /v1/responses/:id': 'Delete a stored response',
  'POST /v1/embeddings': 'Embed texts as vectors',
  'POST /v1/rerank': 'Rank documents by relevance to a query',
  'POST /v1/reranking': 'Rank documents by relevance to a query (llama.cpp spelling)',
  'POST /rerank': 'Rank documents by relevance to a query (Jina/Cohere path)',
  'GET /v1/models': 'List the models served',
  'GET /v1/models/:model': 'Describe one model',
  'POST /v1/messages': 'Generate a reply with the Anthropic Messages API',
  'POST /v1/messages/count_tokens': 'Count the tokens of a Messages request',
  'POST /api/chat': 'Generate a chat reply (Ollama)',
  'POST /api/generate': 'Continue a prompt (Ollama)',
  'GET /api/tags': 'List the models served (Ollama)',
  'POST /api/show': 'Describe one model (Ollama)',
  'GET /api/ps': 'List the models loaded (Ollama)',
  'GET /api/version': 'The version (Ollama)',
  'POST /api/embed': 'Embed texts as vectors (Ollama)',
  'POST /api/embeddings': 'Embed a text as a vector (Ollama, legacy)',
  'GET /api/conversations': 'List conversations, newest first',
  'POST /api/conversations': 'Start a conversation',
  'POST /api/conversations/import': 'Import a conversation exported as JSON',
  'GET /api/conversations/:id': 'Get a conversation and its message tree',
  'PATCH /api/conversations/:id': 'Rename a conversation, change its model or settings, or apply a preset',
  'DELETE /api/conversations/:id': 'Delete a conversation',
  'GET /api/conversations/:id/export': 'Export a conversation as JSON or Markdown',
  'POST /api/conversations/:id/messages': 'Send a message; the reply streams and is stored as it comes',
  'POST /api/conversations/:id/messages/:messageId/regenerate': 'Generate another reply to a message',
  'POST /api/conversations/:id/messages/:messageId/continue': 'Continue a reply that was cut at its length limit',
  'PUT /api/conversations/:id/branch': 'Choose which branch of the tree is shown',
  'GET /api/search': 'Search the text of every message, newest first',
  'GET /api/models': "The models served, with their capabilities and context length (Parlance's own view)",
  'POST /api/tokenize': "Count a prompt's tokens with the model's tokenizer and chat template (a draft, a conversation)",
  'GET /api/settings': 'Get the global default settings of every conversation',
  'PUT /api/settings': 'Replace the global default settings',
  'GET /api/presets': 'List the presets (a system prompt plus settings), by name',
  'POST /api/presets': 'Save a preset',
  'GET /api/presets/:id': 'Get a preset',
  'PATCH /api/presets/:id': 'Rename or change a preset',
  'DELETE /api/presets/:id': 'Delete a preset',
  'GET /api/messages/:messageId/events': "Follow a reply's stream (resumes with Last-Event-ID)",
  'POST /api/messages/:messageId/stop': 'Stop a reply, keeping what it said',
  'GET /health': 'Liveness: status, models, engine load, llama.cpp binary, notices',
  'GET /ready': 'Readiness: engines loaded, models served, store reachable (503 until then)',
  'GET /metrics': 'Prometheus metrics',
  'POST /completion': "The seed's streaming completion: a prompt in, SSE text out",
  'GET /stream-example': "The seed's fixed token stream",
  'POST /prompt_data': "The seed's echo",
  'GET /': 'The chat page',
  'GET /c/:id': 'The chat page, open at a conversation',
};

/** The group of a route, by its path; `/` alone is the page. */
export function groupOf(url: string): (typeof groups)[number] | undefined {
  if (url === '/') return groups.find((group) => group.tag === 'Chat page');
  return groups.find((group) => group.prefixes.some((prefix) => url.startsWith(prefix)));
}

export function summaryOf(method: string, url: string): string | undefined {
  // Parlance's own API is documented under its prefix; its old /api paths are hidden aliases.
  return summaries[`${method} ${url.startsWith('/parlance/api/') ? url.slice('/parlance'.length) : url}`];
}

/** The top-bar mark of /docs: the name, not a framework's logo. */
const logo = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="32" viewBox="0 0 160 32"><text x="0" y="24" font-family="system-ui, sans-serif" font-size="24" font-weight="600" fill="#fff">Parlance</text></svg>',
);

const icon = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1f2937"/><text x="16" y="23" text-anchor="middle" font-family="system-ui, sans-serif" font-size="20" font-weight="700" fill="#fff">P</text></svg>',
);

/**
 * OpenAPI generated from the routes' zod schemas, browsable at `/docs` as FastAPI users expect, grouped by dialect.
 * Its pages carry the chat page's security headers (Swagger UI runs from its own files, no inline script), and
 * when keys are set they need one like the API they describe (`auth.ts`).
 */
export async function installDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: 'Parlance', description: 'A self-hostable LLM chat server with an OpenAI-compatible API.', version: packageVersion },
      tags: displayOrder.flatMap((tag) => groups.filter((group) => group.tag === tag)).map(({ tag, description }) => ({ name: tag, description })),
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: (input) => {
      const transformed = jsonSchemaTransform(input);
      // A route without a schema (the page, the seed's form endpoint) comes back without one.
      const schema = (transformed.schema as typeof transformed.schema | undefined) ?? {};
      const url = transformed.url;
      const methods = Array.isArray(input.route.method) ? input.route.method : [input.route.method];
      const group = groupOf(input.url);
      const summary = methods.map((method) => summaryOf(method, input.url)).find((text) => text !== undefined);
      return {
        url,
        schema: {
          ...schema,
          ...(schema.tags === undefined && group ? { tags: [group.tag] } : {}),
          ...(schema.summary === undefined && summary ? { summary } : {}),
          ...(group?.hidden ? { hide: true } : {}),
        },
      };
    },
  });
  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route === undefined || !(route === '/docs' || route.startsWith('/docs/'))) return undefined;
    reply.headers(securityHeaders);
    // The plugin's own redirect from its index.html keeps the URL whole when a query follows, so it
    // redirected to itself forever: this one goes to the page, query kept.
    if (route === '/docs/static/index.html') {
      const query = request.url.indexOf('?');
      return reply.redirect(query < 0 ? '/docs/' : `/docs/${request.url.slice(query)}`);
    }
    return undefined;
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    logo: { type: 'image/svg+xml', content: logo, href: '/docs', target: '_self' },
    theme: { title: 'Parlance', favicon: [{ filename: 'favicon.svg', rel: 'icon', sizes: 'any', type: 'image/svg+xml', content: icon }] },
    uiConfig: { docExpansion: 'list' },
  });
}
