import { Pool } from 'undici';

/**
 * The generator's HTTP client: undici Pools (keep-alive HTTP/1.1, no pipelining), at most
 * `connections` sockets, split evenly over one or more API replicas and used round-robin.
 * A hand-written node:net client once replaced it to save generator CPU; a same-run A/B in
 * bench/RESULTS.md found the headline figures unchanged, because the API, not the generator,
 * is the limit, so the bench keeps the maintained client.
 */

export type Answer = {
  status: number;
  /** Retry-After in milliseconds, when the server sent one. */
  retryAfterMs: number | null;
  /** The server honoured a `Prefer` (RFC 7240): it sent Preference-Applied. */
  preferenceApplied: boolean;
  body: any;
};

export const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/json' });

/** A hung server fails its requests instead of the run. */
const RESPONSE_TIMEOUT_MS = 60_000;

export type HttpClientOptions = {
  /** A request fails (UND_ERR_HEADERS_TIMEOUT / UND_ERR_BODY_TIMEOUT) when its answer stalls this long. */
  responseTimeoutMs?: number;
};

type Method = 'GET' | 'POST';

export class HttpClient {
  private readonly pools: Pool[];
  private next = 0;

  constructor(origins: string | readonly string[], private readonly connections: number, options: HttpClientOptions = {}) {
    const list = typeof origins === 'string' ? [origins] : origins;
    if (list.length === 0) throw new Error('HttpClient needs at least one origin');
    if (!Number.isInteger(connections) || connections < 1) throw new Error(`HttpClient connections must be a positive integer, not ${connections}`);
    const timeout = options.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS;
    this.pools = list.map((origin, index) => {
      if (!origin.startsWith('http://')) throw new Error(`HttpClient supports only http:// origins, not ${JSON.stringify(origin)}`);
      // The first `connections % origins` replicas take one connection more, so the total is exact.
      const share = Math.max(1, Math.floor(connections / list.length) + (index < connections % list.length ? 1 : 0));
      return new Pool(origin, { connections: share, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: timeout, bodyTimeout: timeout });
    });
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

  /**
   * One request through undici's dispatch API with a handler of the core's own shape
   * (onConnect/onHeaders/onData/onComplete): undici hands it the raw header list, so an answer's
   * headers are not parsed into an object (undici's parseHeaders was the generator's largest
   * function, measured in bench/RESULTS.md) and only Retry-After is looked for.
   */
  send(method: Method, path: string, body?: string, headers: Readonly<Record<string, string>> = JSON_HEADERS): Promise<Answer> {
    const pool = this.pools[this.next]!;
    this.next = (this.next + 1) % this.pools.length;
    return new Promise<Answer>((resolve, reject) => {
      pool.dispatch({ method, path, headers, body: body ?? null }, new AnswerHandler(resolve, reject));
    });
  }

  /** Lets requests already sent finish, then closes every socket. Later sends reject. */
  async close(): Promise<void> {
    await Promise.all(this.pools.map((pool) => (pool.closed ? undefined : pool.close())));
  }
}

/** Gathers one answer: its status, Retry-After, whether a preference was applied, and body chunks. */
class AnswerHandler {
  private status = 0;
  private retryAfterMs: number | null = null;
  private preferenceApplied = false;
  private readonly chunks: Buffer[] = [];

  constructor(
    private readonly resolve: (answer: Answer) => void,
    private readonly reject: (error: Error) => void,
  ) {}

  onConnect(): void {}

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    this.status = statusCode;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!;
      if (name.length === RETRY_AFTER.length && name.toString('latin1').toLowerCase() === RETRY_AFTER) {
        this.retryAfterMs = parseRetryAfter(rawHeaders[i + 1]!.toString('latin1'));
      } else if (name.length === PREFERENCE_APPLIED.length && name.toString('latin1').toLowerCase() === PREFERENCE_APPLIED) {
        this.preferenceApplied = true;
      }
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    this.resolve({ status: this.status, retryAfterMs: this.retryAfterMs, preferenceApplied: this.preferenceApplied, body: parseBody(this.chunks) });
  }

  onError(error: Error): void {
    this.reject(error);
  }
}

const RETRY_AFTER = 'retry-after';
const PREFERENCE_APPLIED = 'preference-applied';

function parseBody(chunks: Buffer[]): unknown {
  const text = chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString();
  if (text.length === 0) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
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
