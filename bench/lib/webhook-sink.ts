import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * `--webhook`: a receiver on loopback that answers every webhook 204 and counts them, so a run
 * measures the booking path with the outbox written and the relay sending, against a run
 * without (bench/RESULTS.md, "Webhooks on the booking path").
 */
export type WebhookSink = { url: string; received: () => number; close: () => Promise<void> };

export async function startWebhookSink(): Promise<WebhookSink> {
  let received = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      received += 1;
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/bench-hooks`,
    received: () => received,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
