import { performance } from 'node:perf_hooks';
import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import { guardedLookup, refusedLiteral, type TargetPolicy } from './target.js';

/**
 * Sending one signed event over HTTP, per the Standard Webhooks specification: headers
 * webhook-id (the event's, the same on every retry), webhook-timestamp (this attempt's, Unix
 * seconds) and webhook-signature (v1, HMAC-SHA256 over "<id>.<timestamp>.<body>", computed by the
 * `standardwebhooks` package), body `{ type, timestamp, data }`.
 */

export type SignedEvent = {
  url: string;
  secret: string;
  /** The webhook-id header: "msg_" + the event's message id. */
  messageId: string;
  type: string;
  occurredAt: Date;
  data: unknown;
};

export type SendResult =
  | { ok: true; statusCode: number; latencyMs: number }
  | { ok: false; statusCode: number | null; latencyMs: number; error: string };

/** The body as sent (and as signed): a receiver verifies exactly these bytes. */
export const eventBody = (event: Pick<SignedEvent, 'type' | 'occurredAt' | 'data'>): string =>
  JSON.stringify({ type: event.type, timestamp: event.occurredAt.toISOString(), data: event.data });

export function signedHeaders(event: SignedEvent, body: string, at: Date): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'ticket-rush-webhooks/1',
    'webhook-id': event.messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1_000)),
    'webhook-signature': new Webhook(event.secret).sign(event.messageId, at, body),
  };
}

/** A receiver's answer body is read only this far (then dropped): it says nothing we use. */
const MAX_ANSWER_BYTES = 64 * 1_024;

export type Sender = { send: (event: SignedEvent) => Promise<SendResult>; close: () => Promise<void> };

/**
 * An HTTP client for deliveries: every connection's address passes the target policy, and an
 * attempt ends after `timeoutMs` whatever the receiver does (connect, headers, body).
 */
export function createSender(policy: TargetPolicy, timeoutMs: number): Sender {
  const agent = new Agent({
    connect: { lookup: guardedLookup(policy), timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    // Receivers are few and called often: keep their connections, but not forever.
    keepAliveTimeout: 10_000,
  });
  const send = async (event: SignedEvent): Promise<SendResult> => {
    const started = performance.now();
    const latencyMs = () => Math.round(performance.now() - started);
    const refused = refusedLiteral(event.url, policy);
    if (refused) return { ok: false, statusCode: null, latencyMs: 0, error: refused.message };
    const body = eventBody(event);
    try {
      const answer = await request(event.url, {
        method: 'POST',
        headers: signedHeaders(event, body, new Date()),
        body,
        dispatcher: agent,
        signal: AbortSignal.timeout(timeoutMs),
      });
      let read = 0;
      for await (const chunk of answer.body) {
        read += (chunk as Buffer).length;
        if (read > MAX_ANSWER_BYTES) {
          answer.body.destroy();
          break;
        }
      }
      const statusCode = answer.statusCode;
      if (statusCode >= 200 && statusCode < 300) return { ok: true, statusCode, latencyMs: latencyMs() };
      return { ok: false, statusCode, latencyMs: latencyMs(), error: `answered ${statusCode}` };
    } catch (error) {
      return { ok: false, statusCode: null, latencyMs: latencyMs(), error: describeFailure(error, timeoutMs) };
    }
  };
  return { send, close: () => agent.close() };
}

function describeFailure(error: unknown, timeoutMs: number): string {
  if (!(error instanceof Error)) return 'request failed';
  const code = (error as { code?: unknown }).code;
  if (error.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return `no answer within ${timeoutMs} ms`;
  }
  const cause = error.cause instanceof Error ? error.cause : undefined;
  const reason = [error.message, cause?.message].filter(Boolean).join(': ');
  return reason.slice(0, 500);
}
