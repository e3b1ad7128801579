import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/**
 * The load generator's HTTP client: keep-alive HTTP/1.1 over `node:net`, one request at a time
 * per socket, at most `connections` sockets spread round-robin over one or more API replicas.
 *
 * Why not undici: the generator shares the machine with the services it measures. In scenario
 * (a) of the benchmark the generator spent 5.0-5.6 CPU seconds with undici's Pool and 3.2-3.4 s
 * with this client (bench/RESULTS.md), and against a bare server undici's `dispatch` cost
 * 41-95 µs of client CPU per request where this costs 38-50 µs. With undici, bench:floor was
 * measuring its own generator (at 100% of a core) rather than the servers.
 *
 * It is a client for this project's own API and its JSON answers, not a general HTTP client:
 * http: only, no pipelining, redirects, compression, proxies or streaming, and of the response
 * headers only the few it needs are read. What it does implement it implements fully (framing
 * by content-length, chunked or close; 1xx; connection: close), because a framing mistake would
 * not fail loudly: it would hand one request's answer to the next.
 */

export type Answer = {
  status: number;
  /** Retry-After in milliseconds, when the server sent one. */
  retryAfterMs: number | null;
  body: any;
};

export const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/json' });

/** As undici's headers and body timeouts were: a hung server fails requests instead of the run. */
const RESPONSE_TIMEOUT_MS = 60_000;

export type HttpClientOptions = {
  /** A request fails with ETIMEDOUT when its whole response has not arrived this long after it was written. */
  responseTimeoutMs?: number;
};

type Method = 'GET' | 'POST';
type Origin = { hostname: string; port: number; hostLine: string };

export class HttpClient {
  private readonly pool: Pool;
  private closing: Promise<void> | null = null;

  constructor(origins: string | readonly string[], private readonly connections: number, options: HttpClientOptions = {}) {
    const list = typeof origins === 'string' ? [origins] : origins;
    if (list.length === 0) throw new Error('HttpClient needs at least one origin');
    if (!Number.isInteger(connections) || connections < 1) throw new Error(`HttpClient connections must be a positive integer, not ${connections}`);
    this.pool = new Pool(list.map(parseOrigin), connections, options.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS);
  }

  /**
   * Opens every connection, each carrying one GET of `path` that must answer 200, so the server
   * has accepted them all before a measurement starts. Why this matters: Node 20's libuv accepts
   * one connection per event-loop turn, and a turn of a busy server serves hundreds of requests,
   * so connections that arrive together with a burst are accepted over seconds (bench/RESULTS.md).
   */
  async openAll(path: string): Promise<void> {
    await Promise.all(
      Array.from({ length: this.connections }, async () => {
        const answer = await this.send('GET', path);
        if (answer.status !== 200) throw new Error(`opening connections: GET ${path} answered ${answer.status}`);
      }),
    );
  }

  send(method: Method, path: string, body?: string, headers: Readonly<Record<string, string>> = JSON_HEADERS): Promise<Answer> {
    if (this.closing !== null) return Promise.reject(new HttpClientError('the HTTP client is closed', 'ERR_CLIENT_CLOSED'));
    const exchange = new Exchange(method, path, body, headers);
    this.pool.dispatch(exchange);
    return exchange.promise;
  }

  /** Lets requests already sent finish, then closes every socket. Later sends reject. */
  close(): Promise<void> {
    this.closing ??= this.pool.close();
    return this.closing;
  }
}

/** An HTTP-level failure that had no answer; `code` is what networkErrorName reports. */
class HttpClientError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'HttpClientError';
  }
}

function parseOrigin(text: string): Origin {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`HttpClient origin ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== 'http:') throw new Error(`HttpClient supports only http:// origins, not ${JSON.stringify(text)}`);
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new Error(`HttpClient origin ${JSON.stringify(text)} must be http://host:port, with no path, query or credentials`);
  }
  // URL keeps the brackets of an IPv6 literal in hostname; net.connect wants the bare address.
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { hostname, port: url.port === '' ? 80 : Number(url.port), hostLine: `host: ${url.host}\r\n` };
}

/**
 * One request from send() to its answer. Its promise's executor is the only closure a request
 * costs (Promise.withResolvers needs Node 22); everything else is methods shared by all requests.
 */
class Exchange {
  /** The next request waiting for a socket, while this one waits too. */
  next: Exchange | null = null;
  resolve!: (answer: Answer) => void;
  reject!: (error: Error) => void;
  readonly promise: Promise<Answer>;

  constructor(
    readonly method: Method,
    readonly path: string,
    readonly body: string | undefined,
    readonly headers: Readonly<Record<string, string>>,
  ) {
    this.promise = new Promise<Answer>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

const JSON_HEADER_LINES = headerLines(JSON_HEADERS);

function headerLines(headers: Readonly<Record<string, string>>): string {
  let text = '';
  for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
  return text;
}

/** The whole request as one string, so it leaves in one write (and, with no delay, one packet). */
function formatRequest(hostLine: string, exchange: Exchange): string {
  const head = `${exchange.method} ${exchange.path} HTTP/1.1\r\n${hostLine}${exchange.headers === JSON_HEADERS ? JSON_HEADER_LINES : headerLines(exchange.headers)}`;
  if (exchange.body !== undefined) return `${head}content-length: ${Buffer.byteLength(exchange.body)}\r\n\r\n${exchange.body}`;
  // A POST says it has no body, as undici did; servers may answer 411 to one that says nothing.
  return exchange.method === 'POST' ? `${head}content-length: 0\r\n\r\n` : `${head}\r\n`;
}

/**
 * The sockets and the queue. Slot i always connects to origins[i % n], so however sockets come
 * and go, the replicas keep an even share of them.
 */
class Pool {
  private readonly freeSlots: number[] = [];
  /** Sockets waiting for a request, most recently used on top: it is the least likely to have been closed by the server's keep-alive timeout. */
  private readonly idle: Connection[] = [];
  /** Every socket not yet closed, for close() to wait on. */
  private readonly live = new Set<Connection>();
  private queueHead: Exchange | null = null;
  private queueTail: Exchange | null = null;
  /** Requests sent and not yet answered or failed. */
  private unsettled = 0;
  private drained: (() => void) | null = null;

  constructor(
    private readonly origins: readonly Origin[],
    connections: number,
    readonly timeoutMs: number,
  ) {
    // Popped from the end, so slot 0 opens first.
    for (let slot = connections - 1; slot >= 0; slot--) this.freeSlots.push(slot);
  }

  dispatch(exchange: Exchange): void {
    this.unsettled += 1;
    const connection = this.idle.pop() ?? this.openConnection();
    if (connection !== null) connection.start(exchange);
    else this.enqueue(exchange);
  }

  /** A socket finished a response and may carry another. */
  release(connection: Connection): void {
    const next = this.dequeue();
    if (next !== null) connection.start(next);
    else this.idle.push(connection);
  }

  settled(): void {
    this.unsettled -= 1;
    if (this.unsettled === 0 && this.drained !== null) {
      this.drained();
      this.drained = null;
    }
  }

  /** A socket left the pool (closed, failed, or not reusable); its slot may open a new one. */
  retire(connection: Connection): void {
    this.freeSlots.push(connection.slot);
    const index = this.idle.indexOf(connection);
    if (index >= 0) this.idle.splice(index, 1);
    while (this.queueHead !== null) {
      const replacement = this.openConnection();
      if (replacement === null) return;
      replacement.start(this.dequeue()!);
    }
  }

  closed(connection: Connection): void {
    this.live.delete(connection);
  }

  async close(): Promise<void> {
    if (this.unsettled > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
      });
    }
    await Promise.all([...this.live].map((connection) => connection.destroy()));
  }

  private openConnection(): Connection | null {
    const slot = this.freeSlots.pop();
    if (slot === undefined) return null;
    const connection = new Connection(this, slot, this.origins[slot % this.origins.length]!);
    this.live.add(connection);
    return connection;
  }

  private enqueue(exchange: Exchange): void {
    if (this.queueTail === null) this.queueHead = exchange;
    else this.queueTail.next = exchange;
    this.queueTail = exchange;
  }

  private dequeue(): Exchange | null {
    const exchange = this.queueHead;
    if (exchange === null) return null;
    this.queueHead = exchange.next;
    if (this.queueHead === null) this.queueTail = null;
    exchange.next = null;
    return exchange;
  }
}

/** One keep-alive socket and the request it is carrying, if any. */
class Connection {
  private readonly socket: Socket;
  private readonly parser = new ResponseParser();
  private exchange: Exchange | null = null;
  /** Made once per socket and refreshed per request, rather than a timer per request. */
  private timer: NodeJS.Timeout | null = null;
  private retired = false;

  constructor(
    private readonly pool: Pool,
    readonly slot: number,
    private readonly origin: Origin,
  ) {
    this.socket = connect(origin.port, origin.hostname);
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (error: Error) => this.fail(error));
    this.socket.on('close', () => this.onClose());
  }

  /** Writes the request; a socket still connecting buffers it until it is connected. */
  start(exchange: Exchange): void {
    this.exchange = exchange;
    this.socket.write(formatRequest(this.origin.hostLine, exchange));
    // A timer that fires while the socket is idle does nothing, and refresh() re-arms it.
    if (this.timer === null) this.timer = setTimeout(() => this.onTimeout(), this.pool.timeoutMs).unref();
    else this.timer.refresh();
  }

  destroy(): Promise<unknown> {
    const closed = once(this.socket, 'close');
    this.retire();
    return closed;
  }

  private onData(chunk: Buffer): void {
    if (this.retired) return;
    if (this.exchange === null) {
      // Bytes no request asked for: this socket's framing can no longer be trusted.
      this.retire();
      return;
    }
    let extra: number;
    try {
      extra = this.parser.feed(chunk);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    // With one request at a time, bytes after the response mean the server and we disagree on framing.
    if (extra >= 0) this.complete(extra === 0 && this.parser.keepAlive);
  }

  private onEnd(): void {
    if (this.exchange !== null && this.parser.endOfStream()) this.complete(false);
    else if (this.exchange !== null) this.fail(prematureClose());
    else this.retire();
  }

  private onClose(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.exchange !== null) this.fail(prematureClose());
    else this.retire();
    this.pool.closed(this);
  }

  private onTimeout(): void {
    if (this.exchange !== null) this.fail(new HttpClientError(`no complete response within ${this.pool.timeoutMs} ms`, 'ETIMEDOUT'));
  }

  private complete(reusable: boolean): void {
    const exchange = this.exchange!;
    this.exchange = null;
    exchange.resolve(this.parser.answer());
    this.pool.settled();
    if (reusable) this.pool.release(this);
    else this.retire();
  }

  private fail(error: Error): void {
    const exchange = this.exchange;
    if (exchange !== null) {
      this.exchange = null;
      exchange.reject(error);
      this.pool.settled();
    }
    this.retire();
  }

  private retire(): void {
    if (this.retired) return;
    this.retired = true;
    this.socket.destroy();
    this.pool.retire(this);
  }
}

function prematureClose(): HttpClientError {
  return new HttpClientError('the server closed the connection before the response was complete', 'ECONNRESET');
}

function parseError(what: string): HttpClientError {
  return new HttpClientError(`malformed HTTP response: ${what}`, 'HTTP_PARSE_ERROR');
}

// Parser states.
const HEAD = 0;
const BODY_BY_LENGTH = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_END = 4;
const TRAILERS = 5;
const BODY_UNTIL_CLOSE = 6;
const DONE = 7;

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const LF = 0x0a;
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 4 * 1024;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: |$)/;

/**
 * Response framing for one socket, fed whatever each `data` event brings: a response may arrive
 * in one piece or split anywhere, so every state keeps what it has seen until the rest comes.
 * Reused from response to response; body pieces are views of the socket's buffers, copied only
 * when a body spans several of them.
 */
class ResponseParser {
  /** Whether the socket may carry another request after the current response. */
  keepAlive = true;
  private state = HEAD;
  /** An incomplete header block. */
  private head: Buffer | null = null;
  /** An incomplete chunk-size or trailer line. */
  private partial = '';
  /** The line readLine completed last. */
  private line = '';
  private remaining = 0;
  private readonly parts: Buffer[] = [];
  private status = 0;
  private retryAfterMs: number | null = null;

  /**
   * Consumes `data`. Returns -1 while the response is incomplete, else how many bytes of `data`
   * follow it. Throws an HTTP_PARSE_ERROR for a response that breaks the framing rules.
   */
  feed(data: Buffer): number {
    let buf = data;
    let i = 0;
    for (;;) {
      switch (this.state) {
        case HEAD: {
          let from = i;
          if (this.head !== null) {
            // The terminator may straddle the two pieces.
            from = Math.max(0, this.head.length - 3);
            buf = Buffer.concat([this.head, buf.subarray(i)]);
            i = 0;
            this.head = null;
          }
          const end = buf.indexOf(HEAD_END, from);
          if (end < 0) {
            if (buf.length - i > MAX_HEAD_BYTES) throw parseError(`no end of headers within ${MAX_HEAD_BYTES} bytes`);
            if (i < buf.length) this.head = i === 0 ? buf : buf.subarray(i);
            return -1;
          }
          this.readHead(buf.toString('latin1', i, end));
          i = end + HEAD_END.length;
          break;
        }
        case BODY_BY_LENGTH:
        case CHUNK_DATA: {
          const take = Math.min(this.remaining, buf.length - i);
          if (take > 0) this.parts.push(buf.subarray(i, i + take));
          i += take;
          this.remaining -= take;
          if (this.remaining > 0) return -1;
          this.state = this.state === CHUNK_DATA ? CHUNK_END : DONE;
          break;
        }
        case CHUNK_SIZE: {
          i = this.readLine(buf, i);
          if (i < 0) return -1;
          const semicolon = this.line.indexOf(';');
          const hex = (semicolon < 0 ? this.line : this.line.slice(0, semicolon)).trim();
          if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) throw parseError(`bad chunk size ${JSON.stringify(this.line.slice(0, 40))}`);
          this.remaining = parseInt(hex, 16);
          this.state = this.remaining === 0 ? TRAILERS : CHUNK_DATA;
          break;
        }
        case CHUNK_END: {
          i = this.readLine(buf, i);
          if (i < 0) return -1;
          if (this.line !== '') throw parseError('chunk data longer than its size');
          this.state = CHUNK_SIZE;
          break;
        }
        case TRAILERS: {
          i = this.readLine(buf, i);
          if (i < 0) return -1;
          if (this.line === '') this.state = DONE;
          break;
        }
        case BODY_UNTIL_CLOSE: {
          if (i < buf.length) this.parts.push(i === 0 ? buf : buf.subarray(i));
          return -1;
        }
        default:
          return buf.length - i;
      }
    }
  }

  /** The server closed the socket: true when that ends the response rather than cutting it short. */
  endOfStream(): boolean {
    if (this.state !== BODY_UNTIL_CLOSE) return false;
    this.state = DONE;
    return true;
  }

  /** The completed response; the parser is ready for the next. */
  answer(): Answer {
    const parts = this.parts;
    let body: unknown = null;
    if (parts.length > 0) {
      const text = parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
      parts.length = 0;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const answer: Answer = { status: this.status, retryAfterMs: this.retryAfterMs, body };
    this.state = HEAD;
    this.status = 0;
    this.retryAfterMs = null;
    return answer;
  }

  /** Reads up to the next CRLF into `line`. Returns the index after it, or -1 when the line continues in the next piece. */
  private readLine(buf: Buffer, i: number): number {
    const lf = buf.indexOf(LF, i);
    this.partial += buf.toString('latin1', i, lf < 0 ? buf.length : lf);
    if (this.partial.length > MAX_LINE_BYTES) throw parseError(`a chunk line longer than ${MAX_LINE_BYTES} bytes`);
    if (lf < 0) return -1;
    if (!this.partial.endsWith('\r')) throw parseError('a line not ended by CRLF');
    this.line = this.partial.slice(0, -1);
    this.partial = '';
    return lf + 1;
  }

  /** Parses the status line and the headers this client needs, and picks how the body is framed. */
  private readHead(text: string): void {
    const lines = text.split('\r\n');
    const match = STATUS_LINE.exec(lines[0]!);
    if (match === null) throw parseError(`bad status line ${JSON.stringify(lines[0]!.slice(0, 80))}`);
    const status = Number(match[2]);
    let length = -1;
    let encoded = false;
    let chunked = false;
    let close = false;
    let keepAlive = false;
    let retryAfter: string | undefined;
    for (let k = 1; k < lines.length; k++) {
      const line = lines[k]!;
      const colon = line.indexOf(':');
      // No whitespace before the colon (RFC 9112 §5.1) and no obsolete line folding.
      if (colon <= 0 || line.charCodeAt(colon - 1) <= 0x20 || line.charCodeAt(0) <= 0x20) throw parseError(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon).toLowerCase();
      if (name === 'content-length') {
        const value = line.slice(colon + 1).trim();
        if (!/^\d{1,15}$/.test(value) || (length >= 0 && Number(value) !== length)) throw parseError(`bad content-length ${JSON.stringify(value)}`);
        length = Number(value);
      } else if (name === 'transfer-encoding') {
        // Chunked must be the last coding; any other last coding is framed by the close.
        encoded = true;
        chunked = lastToken(line.slice(colon + 1)) === 'chunked';
      } else if (name === 'connection') {
        for (const token of line.slice(colon + 1).toLowerCase().split(',')) {
          const option = token.trim();
          if (option === 'close') close = true;
          else if (option === 'keep-alive') keepAlive = true;
        }
      } else if (name === 'retry-after' && retryAfter === undefined) {
        retryAfter = line.slice(colon + 1).trim();
      }
    }

    if (status < 200) {
      // We never ask to upgrade, so a 101 would switch to a protocol we cannot read.
      if (status === 101) throw parseError('unexpected 101 Switching Protocols');
      return; // 100 Continue, 103 Early Hints: the real response follows.
    }
    this.status = status;
    this.retryAfterMs = parseRetryAfter(retryAfter);
    this.keepAlive = !close && (match[1] === '1' || keepAlive);
    if (status === 204 || status === 304) {
      this.state = DONE;
    } else if (encoded) {
      // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3).
      this.state = chunked ? CHUNK_SIZE : BODY_UNTIL_CLOSE;
    } else if (length >= 0) {
      this.remaining = length;
      this.state = length === 0 ? DONE : BODY_BY_LENGTH;
    } else {
      this.state = BODY_UNTIL_CLOSE;
    }
    if (this.state === BODY_UNTIL_CLOSE) this.keepAlive = false;
  }
}

function lastToken(list: string): string {
  const comma = list.lastIndexOf(',');
  return list.slice(comma + 1).trim().toLowerCase();
}

/** Retry-After is delay-seconds here (the API never sends an HTTP date). */
export function parseRetryAfter(value: string | string[] | undefined): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^\d+$/.test(text)) return null;
  return Number(text) * 1_000;
}

/** A short name for a failed request that had no HTTP answer (reset, refused, timeout). */
export function networkErrorName(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'unknown';
}
