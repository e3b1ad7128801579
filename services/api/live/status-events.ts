import { createHash } from 'node:crypto';
import type { StatusView } from '../../../shared/booking/standing.js';

/**
 * Event ids of the booking stream, and the Last-Event-ID rule. No replica keeps a history of
 * events, so an id describes the state it carries: `<stage>.<position>.<digest>`, where stage
 * orders the lifecycle (0 queued, 1 held or waitlisted, 2 final), position is the place in line (0 once
 * decided) and digest is a hash of the status without `updated_at` and `position` (two reads
 * of the same state from Redis and from Postgres give the same id). Any replica can then tell
 * whether what it reads now is newer than the event a client names, and never repeats it.
 */

// WAITLISTED shares HELD's stage: it is not final (an offer makes it HELD), so an offer must read
// as news after it, and the ids of every other state stay what they were.
const stageOf = (view: StatusView): number =>
  view.status === 'QUEUED' ? 0 : view.status === 'HELD' || view.status === 'WAITLISTED' ? 1 : 2;

export function eventIdOf(view: StatusView): string {
  const { updated_at: _updated, position, ...state } = view;
  const digest = createHash('sha256').update(JSON.stringify(state)).digest('base64url').slice(0, 12);
  return `${stageOf(view)}.${position ?? 0}.${digest}`;
}

const EVENT_ID = /^([0-2])\.(\d{1,12})\.([\w-]{12})$/;

/**
 * True when `view` is news to a client whose last event was `lastEventId` (none, or an id this
 * API did not make, counts as nothing seen). Later in the lifecycle is newer; earlier is a stale
 * read and is held back. Within a stage: while queued, a place nearer the front, or the same
 * place with other details; otherwise any other content.
 */
export function isNewer(view: StatusView, lastEventId: string | null | undefined): boolean {
  const seen = lastEventId ? EVENT_ID.exec(lastEventId) : null;
  if (!seen) return true;
  const id = eventIdOf(view);
  if (id === lastEventId) return false;
  const [, seenStage, seenPosition] = seen;
  const stage = stageOf(view);
  if (stage !== Number(seenStage)) return stage > Number(seenStage);
  if (stage === 0) return (view.position ?? 0) <= Number(seenPosition);
  return true;
}

/**
 * The reconnection delay a stream suggests (`retry:`), spread over RETRY_SPREAD_MS so clients
 * dropped at once (a replica shutting down) do not all come back in the same instant.
 */
const RETRY_BASE_MS = 1_000;
const RETRY_SPREAD_MS = 4_000;
export const retryHintMs = (): number => RETRY_BASE_MS + Math.floor(Math.random() * RETRY_SPREAD_MS);

/** Retry-After for a stream refused at the cap, spread the same way (whole seconds). */
export const retryAfterSeconds = (): number => 1 + Math.floor(Math.random() * 5);
