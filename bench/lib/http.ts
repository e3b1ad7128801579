import { Pool } from 'undici';

/**
 * The generator's HTTP client: one keep-alive undici Pool per kind of traffic, so status polls
 * never queue behind bookings for a socket. Header objects are shared constants and bodies are
 * read once, so a request costs little more than its JSON.
 */

export type Answer = {
  status: number;
  /** Retry-After in milliseconds, when the server sent one. */
  retryAfterMs: number | null;
  body: any;
};

export const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/json' });

export class HttpClient {
  private readonly pool: Pool;

  constructor(origin: string, connections: number) {
    this.pool = new Pool(origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
  }

  /**
   * One request through undici's dispatch API: the response body is gathered from its chunks
   * by a small handler, without the stream and promise plumbing of `request()`. At tens of
   * thousands of requests the generator's own CPU competes with the services it measures.
   */
  send(method: 'GET' | 'POST', path: string, body?: string, headers: Readonly<Record<string, string>> = JSON_HEADERS): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      let status = 0;
      let retryAfterMs: number | null = null;
      const chunks: Buffer[] = [];
      this.pool.dispatch(
        { method, path, headers, body: body ?? null },
        {
          onRequestStart: () => {},
          onResponseStart: (_controller, statusCode, responseHeaders) => {
            status = statusCode;
            retryAfterMs = parseRetryAfter(responseHeaders['retry-after']);
          },
          onResponseData: (_controller, chunk) => {
            chunks.push(chunk);
          },
          onResponseEnd: () => {
            const text = chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString();
            let parsed: unknown = null;
            if (text.length > 0) {
              try {
                parsed = JSON.parse(text);
              } catch {
                parsed = text;
              }
            }
            resolve({ status, retryAfterMs, body: parsed });
          },
          onResponseError: (_controller, error) => reject(error),
        },
      );
    });
  }

  async close(): Promise<void> {
    await this.pool.close();
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
