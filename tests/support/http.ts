import type { FastifyInstance } from 'fastify';
import { TEST_ADMIN_TOKEN } from './context.js';
import { waitFor } from './wait.js';

/** Thin helpers over app.inject so tests read like the curl walkthrough. */

export type Reply<T = any> = { status: number; body: T; headers: Record<string, string | string[] | undefined> };

export async function call<T = any>(
  app: FastifyInstance,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH',
  url: string,
  options: { body?: unknown; rawBody?: string; headers?: Record<string, string>; admin?: boolean } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.admin) headers.authorization = `Bearer ${TEST_ADMIN_TOKEN}`;
  let payload: string | undefined;
  if (options.rawBody !== undefined) payload = options.rawBody;
  else if (options.body !== undefined) payload = JSON.stringify(options.body);
  if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/json';
  }
  const response = await app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) });
  let body: any = response.body;
  try {
    body = response.json();
  } catch {
    // not JSON: leave the text for the assertion to show
  }
  return { status: response.statusCode, body, headers: response.headers as Reply['headers'] };
}

export async function createShow(app: FastifyInstance, body: Record<string, unknown>) {
  const reply = await call(app, 'POST', '/admin/shows', { body: { name: 'Test show', start_time: '2030-01-01T20:00:00Z', ...body }, admin: true });
  if (reply.status !== 201) throw new Error(`create show failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body as { id: string; total_seats: number; sections: Array<{ name: string }> };
}

/** Polls a booking's status until it leaves QUEUED (the worker decided it) or the deadline passes. */
export async function waitForDecision(app: FastifyInstance, id: string, timeoutMs = 30_000) {
  let last: unknown;
  return waitFor(
    async () => {
      const reply = await call(app, 'GET', `/booking/${id}/status`);
      last = reply.body;
      return reply.status === 200 && reply.body.status !== 'QUEUED' ? reply.body : undefined;
    },
    `booking ${id} to be decided`,
    timeoutMs,
    () => `last status: ${JSON.stringify(last)}`,
  );
}
