import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../../shared/errors.js';
import { tokenMatcher } from '../../../shared/secrets.js';

/** An onRequest hook for admin routes: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
export function adminAuth(adminToken: string) {
  const matches = tokenMatcher(adminToken);
  return async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization ?? '';
    const match = /^Bearer (.+)$/i.exec(header);
    if (!match || !matches(match[1]!)) {
      reply.header('WWW-Authenticate', 'Bearer realm="admin"');
      throw new AppError(401, 'UNAUTHORIZED', 'Admin routes need Authorization: Bearer <ADMIN_TOKEN>');
    }
  };
}
