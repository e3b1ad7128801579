import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import { bearerToken, tokenMatcher } from '../../../shared/secrets.js';

/** An onRequest hook for admin routes: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
export function adminAuth(adminToken: string) {
  const matches = tokenMatcher(adminToken);
  return async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const given = bearerToken(request.headers.authorization);
    if (!given || !matches(given)) {
      reply.header('WWW-Authenticate', 'Bearer realm="admin"');
      throw new AppError(401, 'UNAUTHORIZED', 'Admin routes need Authorization: Bearer <ADMIN_TOKEN>');
    }
  };
}
