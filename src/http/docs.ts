import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { securityHeaders } from './security-headers.js';

/**
 * OpenAPI generated from the routes' zod schemas, browsable at `/docs` as FastAPI users expect. Its pages carry
 * the chat page's security headers (Swagger UI runs from its own files, no inline script), and when keys are set
 * they need one like the API they describe (`auth.ts`).
 */
export async function installDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: 'Parlance', description: 'A self-hostable LLM chat server with an OpenAI-compatible API.', version: '0.1.0' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
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
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
