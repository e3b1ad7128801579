import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../../shared/errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * An onRequest hook for admin routes: `Authorization: Bearer <ADMIN_TOKEN>`. Both sides are
 * hashed first so the comparison is constant-time and independent of the token's length.
 */
export function adminAuth(adminToken: string) {
  const expected = digest(adminToken);
  return async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization ?? '';
    const match = /^Bearer (.+)$/i.exec(header);
    if (!match || !timingSafeEqual(digest(match[1]!), expected)) {
      reply.header('WWW-Authenticate', 'Bearer realm="admin"');
      throw new AppError(401, 'UNAUTHORIZED', 'Admin routes need Authorization: Bearer <ADMIN_TOKEN>');
    }
  };
}
