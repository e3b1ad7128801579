import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../../shared/logger.js';
import { bearerToken, tokenMatcher } from '../../shared/secrets.js';

/**
 * The worker's own scrape endpoint: GET /metrics on WORKER_METRICS_PORT. A plain node:http
 * server: a worker has nothing else to serve. Same token rule as the API's /metrics.
 */

export type MetricsServer = { url: string; close: () => Promise<void> };

const json = (status: number, code: string, message: string) => ({ status, body: JSON.stringify({ error: { code, message } }) });

export async function serveMetrics(
  registry: Registry,
  options: { port: number; host: string; token: string | undefined; logger: Logger },
): Promise<MetricsServer | null> {
  const matches = options.token ? tokenMatcher(options.token) : null;
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const answer = (status: number, body: string, headers: Record<string, string>) => {
      response.writeHead(status, headers);
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    const jsonHeaders = { 'content-type': 'application/json; charset=utf-8' };
    if (path !== '/metrics') {
      const { status, body } = json(404, 'NOT_FOUND', `No route ${request.method} ${path}`);
      return answer(status, body, jsonHeaders);
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      const { status, body } = json(405, 'METHOD_NOT_ALLOWED', 'Use GET /metrics');
      return answer(status, body, { ...jsonHeaders, allow: 'GET, HEAD' });
    }
    const bearer = bearerToken(request.headers.authorization);
    if (matches && !(bearer && matches(bearer))) {
      const { status, body } = json(401, 'UNAUTHORIZED', 'Metrics need Authorization: Bearer <METRICS_TOKEN>');
      return answer(status, body, { ...jsonHeaders, 'www-authenticate': 'Bearer realm="metrics"' });
    }
    registry.metrics().then(
      (text) => answer(200, text, { 'content-type': registry.contentType }),
      (error: unknown) => {
        options.logger.warn({ err: error }, 'metrics: collection failed');
        const { status, body } = json(500, 'INTERNAL', 'Internal server error');
        answer(status, body, jsonHeaders);
      },
    );
  });
  // A scraper that keeps connections open must not hold up shutdown.
  server.keepAliveTimeout = 5_000;

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    // Metrics must never keep a worker from deciding bookings: a taken port (a second worker
    // on this host with the same WORKER_METRICS_PORT) is a warning, not a failed start.
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      options.logger.warn(
        { port: options.port },
        'metrics port already in use: this worker serves no metrics (give each worker process on a host its own WORKER_METRICS_PORT)',
      );
      return null;
    }
    throw error;
  }
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
