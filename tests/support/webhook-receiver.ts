import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP receiver on loopback for webhook tests: records every request (headers and raw
 * body, as the signature covers them) and answers as the test says: a status, or 'hang' (never
 * answer, for timeouts and killed workers). It can go down and come back on the same port.
 */

export type Received = { headers: IncomingHttpHeaders; body: string; type: string; bookingId: string };
export type Answer = number | 'hang';

export class WebhookReceiver {
  readonly received: Received[] = [];
  /** Decides each answer; by default 204. */
  answer: (request: Received, index: number) => Answer = () => 204;
  private server: Server | null = null;
  private readonly hanging = new Set<ServerResponse>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  async start(port = 0): Promise<this> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let parsed: { type?: string; data?: { id?: string } } = {};
        try {
          parsed = JSON.parse(body) as typeof parsed;
        } catch {
          // recorded as is: the assertion shows it
        }
        const received = { headers: request.headers, body, type: parsed.type ?? '', bookingId: parsed.data?.id ?? '' };
        this.received.push(received);
        const answer = this.answer(received, this.received.length - 1);
        if (answer === 'hang') {
          this.hanging.add(response);
          return;
        }
        response.writeHead(answer).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Stops listening and drops every connection (hanging ones included): the receiver is down. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const response of this.hanging) response.destroy();
    this.hanging.clear();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  of(bookingId: string): Received[] {
    return this.received.filter((request) => request.bookingId === bookingId);
  }
}
