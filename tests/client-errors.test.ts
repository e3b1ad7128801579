import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { openListeningTestApi } from './support/context.js';

/**
 * Requests Node's HTTP parser rejects before Fastify sees them (oversized headers, request
 * smuggling shapes, broken chunked bodies) still answer in the project's error shape. inject()
 * skips the parser, so these go over raw TCP to a listening app.
 */

const { baseUrl } = await openListeningTestApi();
const port = Number(new URL(baseUrl).port);

type RawReply = { status: number; headers: Record<string, string>; body: unknown };

/** Sends `request` as bytes and reads the answer until the server closes the connection. */
function sendRaw(request: string): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    // The server may reset the connection after answering; what it sent first still counts.
    socket.on('error', () => {});
    socket.on('close', () => {
      const [head = '', ...rest] = received.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const status = Number(statusLine.split(' ')[1]);
      if (!status) return reject(new Error(`no HTTP answer: ${JSON.stringify(received)}`));
      const headers = Object.fromEntries(
        headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      );
      const text = rest.join('\r\n\r\n');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // left as text for the assertion to show
      }
      resolve({ status, headers, body });
    });
    socket.write(request);
  });
}

const bookingBody = JSON.stringify({ show_id: '00000000-0000-4000-8000-000000000000', customer_email: 'a@example.com', seat_count: 1 });

describe('requests the HTTP parser rejects', () => {
  it.each([
    {
      what: 'headers larger than the limit',
      request: `GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(20_000)}\r\n\r\n`,
      status: 431,
      code: 'HEADERS_TOO_LARGE',
    },
    {
      what: 'both Content-Length and Transfer-Encoding (request smuggling)',
      request: `POST /booking HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${bookingBody.length}\r\nTransfer-Encoding: chunked\r\n\r\n${bookingBody.length.toString(16)}\r\n${bookingBody}\r\n0\r\n\r\n`,
      status: 400,
      code: 'BAD_REQUEST',
      message: /Content-Length/,
    },
    {
      what: 'a broken chunked body',
      request: `POST /booking HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${bookingBody}\r\n0\r\n\r\n`,
      status: 400,
      code: 'BAD_REQUEST',
    },
    {
      what: 'two Content-Length headers that disagree',
      request: `POST /booking HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: ${bookingBody.length}\r\n\r\n${bookingBody}`,
      status: 400,
      code: 'BAD_REQUEST',
      message: /Content-Length/,
    },
    { what: 'a request line that is not HTTP', request: 'HELLO THERE\r\n\r\n', status: 400, code: 'BAD_REQUEST' },
    { what: 'a header name with a space', request: 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n', status: 400, code: 'BAD_REQUEST' },
  ] as Array<{ what: string; request: string; status: number; code: string; message?: RegExp }>)('$what answers $status $code in the error shape', async ({ request, status, code, message }) => {
    const reply = await sendRaw(request);
    expect(reply.status).toBe(status);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    expect(reply.headers.connection).toBe('close');
    expect(reply.body).toEqual({ error: { code, message: message ? expect.stringMatching(message) : expect.any(String) } });
  });

  it('still serves well-formed requests on the same server', async () => {
    const reply = await sendRaw('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(reply.status).toBe(200);
  });
});
