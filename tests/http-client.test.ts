import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpClient, JSON_HEADERS, networkErrorName, type HttpClientOptions } from '../bench/lib/http.js';

/**
 * The load generator's HTTP client (bench/lib/http.ts, undici underneath) against real node:http
 * servers: what the bench relies on, namely answers as {status, retryAfterMs, preferenceApplied, body}, exactly
 * `connections` sockets spread over the replicas, openAll, failures named, and close. HTTP
 * framing itself is undici's and tested there. No Postgres or Redis.
 */

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  // Clients were made after their servers, so they close first.
  while (cleanups.length > 0) await cleanups.pop()!();
});

type Stats = { sockets: number; requests: number };

async function listen(server: { listen(port: number, host: string, done: () => void): unknown; address(): unknown }): Promise<string> {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  return `http://127.0.0.1:${port}`;
}

/** A node:http server counting the sockets and requests it saw. */
async function httpServer(handler: (req: IncomingMessage, res: ServerResponse, stats: Stats) => void) {
  const stats: Stats = { sockets: 0, requests: 0 };
  const server = createHttpServer((req, res) => {
    stats.requests += 1;
    handler(req, res, stats);
  });
  server.on('connection', () => (stats.sockets += 1));
  const url = await listen(server);
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((done) => server.close(done));
  });
  return { url, stats, server };
}

function client(origins: string | readonly string[], connections: number, options?: HttpClientOptions): HttpClient {
  const http = new HttpClient(origins, connections, options);
  cleanups.push(() => http.close());
  return http;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
    req.on('error', fail);
  });
}

describe('HttpClient answers', () => {
  it('returns a JSON body with its status and Retry-After, having sent method, path, headers and body', async () => {
    const seen: Array<{ method?: string; url?: string; headers: IncomingMessage['headers']; body: string }> = [];
    const { url } = await httpServer(async (req, res) => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: await readBody(req) });
      if (req.method === 'POST') res.writeHead(429, { 'content-type': 'application/json', 'Retry-After': '7' }).end('{"error":"RATE_LIMITED","n":[1,2]}');
      else res.writeHead(200, { 'content-type': 'application/json', 'Preference-Applied': 'wait=5' }).end('{"ok":true}');
    });
    const http = client(url, 1);

    await expect(http.send('POST', '/booking?x=1', '{"seats":2}', { ...JSON_HEADERS, 'idempotency-key': 'key-1' })).resolves.toEqual({
      status: 429,
      retryAfterMs: 7_000, preferenceApplied: false,
      body: { error: 'RATE_LIMITED', n: [1, 2] },
    });
    await expect(http.send('GET', '/shows/1')).resolves.toEqual({ status: 200, retryAfterMs: null, preferenceApplied: true, body: { ok: true } });

    const host = new URL(url).host;
    expect(seen[0]).toEqual({
      method: 'POST',
      url: '/booking?x=1',
      headers: { host, connection: 'keep-alive', 'content-type': 'application/json', 'idempotency-key': 'key-1', 'content-length': '11' },
      body: '{"seats":2}',
    });
    expect(seen[1]).toEqual({ method: 'GET', url: '/shows/1', headers: { host, connection: 'keep-alive', 'content-type': 'application/json' }, body: '' });
  });

  it('returns a body that is not JSON as its text', async () => {
    const { url } = await httpServer((_req, res) => res.writeHead(502, { 'content-type': 'text/plain' }).end('Bad gateway: upstream {down'));
    await expect(client(url, 1).send('GET', '/')).resolves.toEqual({ status: 502, retryAfterMs: null, preferenceApplied: false, body: 'Bad gateway: upstream {down' });
  });

  it('returns null for an empty body (204, and 200 with content-length 0) and keeps the socket', async () => {
    const { url, stats } = await httpServer((req, res) => {
      if (req.url === '/none') res.writeHead(204, { 'retry-after': '2' }).end();
      else res.writeHead(200, { 'content-length': '0' }).end();
    });
    const http = client(url, 1);
    await expect(http.send('POST', '/none')).resolves.toEqual({ status: 204, retryAfterMs: 2_000, preferenceApplied: false, body: null });
    await expect(http.send('GET', '/zero')).resolves.toEqual({ status: 200, retryAfterMs: null, preferenceApplied: false, body: null });
    expect(stats.sockets).toBe(1);
  });

  it('decodes a chunked response and reuses the socket after it', async () => {
    const { url, stats } = await httpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"path":');
      res.write(JSON.stringify(req.url));
      res.end('}');
    });
    const http = client(url, 1);
    await expect(http.send('GET', '/a')).resolves.toEqual({ status: 200, retryAfterMs: null, preferenceApplied: false, body: { path: '/a' } });
    await expect(http.send('GET', '/b')).resolves.toEqual({ status: 200, retryAfterMs: null, preferenceApplied: false, body: { path: '/b' } });
    expect(stats.sockets).toBe(1);
  });

  it('round-trips a UTF-8 body with its byte length as content-length', async () => {
    const { url } = await httpServer(async (req, res) => {
      const text = await readBody(req);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ contentLength: req.headers['content-length'], received: JSON.parse(text) }));
    });
    const payload = JSON.stringify({ name: 'Zoë – 東京 🎫', note: 'ñ'.repeat(3_000) });
    expect(Buffer.byteLength(payload)).toBeGreaterThan(payload.length);
    await expect(client(url, 1).send('POST', '/echo', payload)).resolves.toEqual({
      status: 200,
      retryAfterMs: null, preferenceApplied: false,
      body: { contentLength: String(Buffer.byteLength(payload)), received: JSON.parse(payload) },
    });
  });
});

describe('HttpClient sockets', () => {
  it('opens a new socket after the server answers with connection: close', async () => {
    const { url, stats } = await httpServer((req, res) => res.writeHead(200, { connection: 'close', 'content-type': 'application/json' }).end(JSON.stringify(req.url)));
    const http = client(url, 1);
    for (const path of ['/1', '/2', '/3']) await expect(http.send('GET', path)).resolves.toMatchObject({ status: 200, body: path });
    expect(stats).toEqual({ sockets: 3, requests: 3 });
  });

  it('queues requests beyond its connections and answers each with its own response', async () => {
    // Answers are held until three requests are in flight (or the last two arrive), so a client
    // that used fewer sockets would hang, and one that used more would show more in flight.
    const held: Array<() => void> = [];
    let mostInFlight = 0;
    const { url, stats } = await httpServer((req, res, counts) => {
      held.push(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url })));
      mostInFlight = Math.max(mostInFlight, held.length);
      if (held.length === 3 || counts.requests === 50) for (const answer of held.splice(0)) answer();
    });
    const http = client(url, 3);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, k) => http.send('GET', `/item/${k}`)));
    expect(answers.map((answer) => answer.body.path)).toEqual(Array.from({ length: 50 }, (_, k) => `/item/${k}`));
    expect(stats).toEqual({ sockets: 3, requests: 50 });
    expect(mostInFlight).toBe(3);
  });

  it('spreads its sockets round-robin over several origins', async () => {
    const serve = (name: string) => (_req: IncomingMessage, res: ServerResponse) => setImmediate(() => res.writeHead(200).end(JSON.stringify(name)));
    const a = await httpServer(serve('a'));
    const b = await httpServer(serve('b'));
    const http = client([a.url, b.url], 4);
    const answers = await Promise.all(Array.from({ length: 8 }, () => http.send('GET', '/')));
    // Sockets 0 and 2 go to a, 1 and 3 to b; each of the first four requests opened one.
    expect(answers.slice(0, 4).map((answer) => answer.body)).toEqual(['a', 'b', 'a', 'b']);
    expect([a.stats.sockets, b.stats.sockets]).toEqual([2, 2]);
    expect(a.stats.requests + b.stats.requests).toBe(8);
    expect(a.stats.requests).toBeGreaterThan(0);
    expect(b.stats.requests).toBeGreaterThan(0);
  });

  it('rejects with ECONNREFUSED when nothing listens', async () => {
    const probe = createNetServer();
    const url = await listen(probe);
    await new Promise((done) => probe.close(done));
    const error = await client(url, 2).send('GET', '/').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect(networkErrorName(error)).toBe('ECONNREFUSED');
  });

  it('rejects a response cut short by the server, then answers on a new socket', async () => {
    const { url, stats } = await httpServer((_req, res, counts) => {
      if (counts.requests === 1) {
        res.writeHead(200, { 'content-length': '100' });
        res.write('{"partial":', () => res.socket?.destroy());
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"whole":true}');
      }
    });
    const http = client(url, 1);
    await expect(http.send('GET', '/')).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
    await expect(http.send('GET', '/')).resolves.toEqual({ status: 200, retryAfterMs: null, preferenceApplied: false, body: { whole: true } });
    expect(stats.sockets).toBe(2);
  });

  it('rejects with a headers timeout when no response comes in time, then answers on a new socket', async () => {
    const held: ServerResponse[] = [];
    const { url, stats } = await httpServer((_req, res, counts) => {
      if (counts.requests === 1) held.push(res);
      else res.writeHead(200).end('"late but fine"');
    });
    // The first response never comes, so a generous timeout costs nothing and lets the second
    // request (which must succeed) survive a starved test machine.
    const http = client(url, 1, { responseTimeoutMs: 1_000 });
    await expect(http.send('GET', '/')).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    await expect(http.send('GET', '/')).resolves.toMatchObject({ status: 200, body: 'late but fine' });
    expect(held).toHaveLength(1);
    expect(stats.sockets).toBe(2);
  });

  it('close() lets a request in flight finish, then closes its sockets; later sends reject', async () => {
    let release: () => void = () => {};
    let arrive: () => void = () => {};
    const arrived = new Promise<void>((resolve) => (arrive = resolve));
    const { url, server } = await httpServer((_req, res) => {
      release = () => res.writeHead(200).end('"done"');
      arrive();
    });
    const serverSocketClosed = new Promise((done) => server.once('connection', (socket: Socket) => socket.once('close', done)));
    const http = client(url, 1);
    const order: string[] = [];
    const answer = http.send('GET', '/slow').then((value) => (order.push('answered'), value));
    await arrived;

    const closing = http.close().then(() => order.push('closed'));
    await expect(http.send('GET', '/late')).rejects.toMatchObject({ code: 'UND_ERR_CLOSED' });
    expect(order).toEqual([]);
    release();
    await expect(answer).resolves.toMatchObject({ status: 200, body: 'done' });
    await closing;
    await serverSocketClosed;
    expect(order).toEqual(['answered', 'closed']);
  });

  it('refuses origins it cannot speak to', () => {
    for (const origin of ['https://127.0.0.1:3000', 'ftp://127.0.0.1', 'not a url']) {
      expect(() => new HttpClient(origin, 1), origin).toThrow(/HttpClient/);
    }
    expect(() => new HttpClient([], 1)).toThrow(/at least one origin/);
    expect(() => new HttpClient('http://127.0.0.1:3000', 0)).toThrow(/positive integer/);
    expect(() => new HttpClient(['http://127.0.0.1:3000', 'https://127.0.0.1:3001'], 2)).toThrow(/only http/);
  });
});

describe('openAll', () => {
  it('opens every connection with one GET each, so later requests reuse them', async () => {
    const paths: string[] = [];
    const { url, stats } = await httpServer((req, res) => {
      paths.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    });
    const http = client(url, 5);
    await http.openAll('/health');
    expect(stats.sockets).toBe(5);
    expect(paths).toEqual(Array.from({ length: 5 }, () => 'GET /health'));
    await Promise.all(Array.from({ length: 20 }, () => http.send('GET', '/after')));
    expect(stats.sockets).toBe(5);
  });

  it('rejects, naming the path and status, when the server does not answer 200', async () => {
    const { url } = await httpServer((_req, res) => res.writeHead(503).end());
    await expect(client(url, 2).openAll('/health')).rejects.toThrow('GET /health answered 503');
  });
});
