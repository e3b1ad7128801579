import swagger, { type SwaggerTransform } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../../../shared/config.js';
import { ErrorBody } from '../schemas.js';
import { OVERLOAD_EXEMPT_ROUTES } from './overload.js';

/**
 * The OpenAPI document, generated from the same zod schemas that validate requests and
 * serialise responses, at /docs/json, with Swagger UI at /docs. Registered before the routes:
 * @fastify/swagger learns them as they are added.
 */

export const DOCS_PATH = '/docs';

/**
 * Answers any route can give besides its own, documented once here rather than on each route:
 * a client should expect them everywhere. A route's own schema for a status wins.
 */
function withCommonErrors(config: Pick<Config, 'RATE_LIMIT_PER_MINUTE'>): SwaggerTransform {
  return (document) => {
    const schema = document.schema as FastifySchema & { hide?: boolean };
    if (!schema || schema.hide) return jsonSchemaTransform(document as never);
    const routeConfig = (document.route.config ?? {}) as { rateLimit?: unknown };
    const common: Record<number, unknown> = {
      500: ErrorBody.describe('Unexpected failure (INTERNAL); the body never carries internals'),
    };
    if (config.RATE_LIMIT_PER_MINUTE > 0 && routeConfig.rateLimit !== false) {
      common[429] = ErrorBody.describe('Too many requests from this client (RATE_LIMITED); see Retry-After');
    }
    // Postgres or Redis down answers 503 on any route that needs them, overload on any but the exempt.
    if (!OVERLOAD_EXEMPT_ROUTES.has(document.url)) {
      common[503] = ErrorBody.describe('Overloaded or a dependency is down (OVERLOADED, SERVICE_UNAVAILABLE); see Retry-After');
    }
    // Fastify's body parser refuses any other media type on a route that takes a body.
    if (schema.body) {
      common[415] = ErrorBody.describe('The body is not JSON (UNSUPPORTED_MEDIA_TYPE): send Content-Type: application/json');
    }
    const response = { ...common, ...((schema.response as object | undefined) ?? {}) };
    const transformed = jsonSchemaTransform({ ...document, schema: { ...schema, response } } as never);
    return withResponseHeaders(transformed, response as Record<string, unknown>);
  };
}

/**
 * The zod transform keeps a content-typed response's description and content but drops its
 * `headers` (e.g. the 202's Location and Retry-After); @fastify/swagger documents them when
 * they are on the transformed response as JSON schemas.
 */
function withResponseHeaders<T extends { schema: FastifySchema }>(transformed: T, declared: Record<string, unknown>): T {
  for (const [status, response] of Object.entries(declared)) {
    const headers = (response as { headers?: Record<string, z.ZodType> } | null)?.headers;
    const target = (transformed.schema.response as Record<string, object> | undefined)?.[status];
    if (!headers || !target) continue;
    Object.assign(target, {
      headers: Object.fromEntries(
        Object.entries(headers).map(([name, header]) => {
          const { $schema: _dialect, ...json } = z.toJSONSchema(header, { io: 'output' });
          return [name, json];
        }),
      ),
    });
  }
  return transformed;
}

/** The groups operations are listed under in the docs; every route names one in its schema's `tags`. */
const TAGS = [
  { name: 'bookings', description: 'Request seats, poll the decision, confirm or cancel a hold' },
  { name: 'shows', description: 'Shows and their seats, as customers see them' },
  { name: 'admin', description: 'Operator actions; bearer ADMIN_TOKEN' },
  { name: 'ops', description: 'Liveness, readiness and metrics for orchestrators and monitoring' },
];

export async function registerDocs(app: FastifyInstance, config: Pick<Config, 'RATE_LIMIT_PER_MINUTE'>): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Ticket Rush API',
        version: '1.0.0',
        description:
          'Book seats for a show when sales open. POST /booking queues a request and answers 202 at once; ' +
          'poll its status_url until a worker decides it (HELD or FAILED), then confirm or cancel before the hold lapses. ' +
          'Errors are always `{ error: { code, message, details? } }`.',
      },
      tags: TAGS,
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'The ADMIN_TOKEN the API was started with' },
        },
      },
    },
    transform: withCommonErrors(config),
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PATH });
}
