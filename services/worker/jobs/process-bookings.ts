import { setTimeout as delay } from 'node:timers/promises';
import { UnrecoverableError, type Job } from 'bullmq';
import {
  ConcurrentDecisionError,
  decideBookings,
  type DecidedBooking,
  type Decision,
  type DecideObserver,
  type DecideSettings,
} from '../../../shared/booking/decide.js';
import { effectiveSettings } from '../../../shared/booking/sale-schedule.js';
import type { LayoutCache } from '../../../shared/booking/shows.js';
import type { Database } from '../../../shared/db/client.js';
import type { ChangePublisher, ChangedBooking } from '../../../shared/live/changes.js';
import type { Logger } from '../../../shared/logger.js';
import type { BatchSummary, BookingBatch, BookingJob, BookingResult } from '../../../shared/queue/catalog.js';
import type { RequestIndex } from '../../../shared/queue/request-index.js';
import { KeyedBatcher } from '../batcher.js';

/**
 * Decides a batch job of queued booking requests. Each request joins its show's next claim
 * transaction (KeyedBatcher), alongside requests of other jobs this process holds. Business
 * outcomes (held, sold out, over the limit) are results, recorded in the request index for
 * polls; only transient trouble (Postgres down, deadlock) throws, and BullMQ retries the job
 * with backoff. Idempotent: requests already decided return the stored decision, so a retried
 * or redelivered batch only decides what is left.
 */

/** Rounds a request may find its seats locked by others before handing back to BullMQ's backoff. */
const MAX_CONTENDED_ROUNDS = 50;
/** Attempts at a batch that collided with a concurrent duplicate delivery. */
const MAX_BATCH_REDOS = 5;

/** Other transactions kept a request's seats locked for every round: BullMQ retries it later. */
export class SeatsLockedError extends Error {
  override name = 'SeatsLockedError';
}

export type ProcessBookingDeps = {
  db: Database;
  layouts: LayoutCache;
  /** The environment's settings, for shows without their own overrides. */
  settings: DecideSettings;
  batchSize: number;
  /** WORKER_BATCH_INTERVAL_MS: the least time between the starts of a show's transactions while requests wait (KeyedBatcher). */
  batchIntervalMs?: number;
  logger: Logger;
  /** Where decisions are recorded for polls; none in tests that only exercise deciding. */
  index?: RequestIndex;
  /** Live updates: the job's fresh decisions, published once they are recorded. */
  changes?: ChangePublisher;
  observer?: BookingObserver;
  /**
   * Every request of the job is decided (none left to retry): a show's released batch hands its
   * line on here (the line keeper's batchDecided). Must not throw.
   */
  onBatchDecided?: (jobId: string) => Promise<void>;
};

/** What the worker's metrics watch; plain callbacks so this module knows no metrics library. */
export type BookingObserver = DecideObserver & {
  /** A batch of requests (one show) goes into one transaction. */
  batch?: (size: number) => void;
  /**
   * Requests of one job decided now (not redeliveries of ones decided before), once per job:
   * the metrics count them by outcome in one pass rather than label by label per request.
   */
  decided?: (decided: ReadonlyArray<readonly [request: BookingJob, booking: DecidedBooking]>) => void;
};

/** No request of the batch got seats or a place on the waiting list, and none is to be decided again. */
function gaveNoSeat(decisions: Map<string, Decision>): boolean {
  for (const decision of decisions.values()) {
    if (decision.kind === 'contended' || (!decision.duplicate && decision.booking.status !== 'FAILED')) return false;
  }
  return true;
}

export function toResult(booking: DecidedBooking): BookingResult {
  const decision = {
    seats: booking.seats,
    hold_expires_at: booking.holdExpiresAt?.toISOString() ?? null,
    decided_at: booking.decidedAt.toISOString(),
  };
  // A FAILED booking always has its reason (CHECK bookings_failed_has_reason).
  if (booking.status === 'FAILED') return { status: 'FAILED', reason: booking.reason!, ...decision };
  if (booking.status === 'WAITLISTED') return { status: 'WAITLISTED', reason: null, ...decision };
  return { status: 'HELD', reason: null, ...decision };
}

/**
 * Requests per batch for a show whose last batch here gave no seat: the batch's first look
 * decides a sold-out show's requests in one statement with no lock (shared/booking/decide.ts),
 * so a backlog after the sell-out goes in fewer, larger statements. Should seats come free, the
 * claim still takes at most `batchSize` per transaction.
 */
export const SOLD_OUT_BATCH_SIZE = 1_000;

export function createBookingProcessor(deps: ProcessBookingDeps) {
  /** Shows whose last batch in this process gave no seat and left none to decide again. */
  const soldOut = new Set<string>();
  const batcher = new KeyedBatcher<BookingJob, Decision>(async (showId, requests) => {
    const layout = await deps.layouts.get(showId);
    if (!layout) throw new UnrecoverableError(`show ${showId} does not exist`);
    for (let redo = 1; ; redo++) {
      try {
        const started = performance.now();
        deps.observer?.batch?.(requests.length);
        // The show's own hold_seconds / max_seats_per_customer where it sets them (read with its
        // plan, so a PATCH reaches this worker within the plan cache's bound, PLAN_MAX_AGE_MS).
        // A show this process has not found sold out skips the first look (DecideOptions.seatsLikely).
        const decisions = await decideBookings(deps.db, layout, requests, effectiveSettings(layout, deps.settings), {
          observer: deps.observer,
          claimBatch: deps.batchSize,
          seatsLikely: !soldOut.has(showId),
        });
        if (gaveNoSeat(decisions)) soldOut.add(showId);
        else soldOut.delete(showId);
        deps.logger.debug({ showId, batch: requests.length, ms: Math.round(performance.now() - started) }, 'batch decided');
        return decisions;
      } catch (error) {
        if (!(error instanceof ConcurrentDecisionError) || redo >= MAX_BATCH_REDOS) throw error;
      }
    }
  }, (showId) => (soldOut.has(showId) ? Math.max(deps.batchSize, SOLD_OUT_BATCH_SIZE) : deps.batchSize), deps.batchIntervalMs);

  /**
   * One request to its decision, waiting out seats locked by other transactions. `fresh` is
   * false when the request had been decided before (a redelivery): its stored booking may have
   * moved on since (confirmed, cancelled), so that is not a decision to record for polls.
   */
  async function decideRequest(request: BookingJob, attempt: number): Promise<{ result: BookingResult; fresh: boolean; booking: DecidedBooking }> {
    for (let round = 1; ; round++) {
      const decision = await batcher.submit(request.show_id, request);
      if (decision.kind === 'decided') {
        const { booking } = decision;
        // The line's object is built only when it is written (the bench and production run at warn).
        if (deps.logger.isLevelEnabled('info')) {
          // reqId is the API's request id under the key Fastify logs it with: one search follows a
          // booking from the API's lines into the worker's.
          deps.logger.info(
            {
              reqId: request.request_id,
              bookingId: request.id,
              showId: request.show_id,
              status: booking.status,
              reason: booking.reason,
              seats: booking.seats.length,
              duplicate: decision.duplicate,
              attempt,
            },
            'booking decided',
          );
        }
        return { result: toResult(booking), fresh: !decision.duplicate, booking };
      }
      if (round >= MAX_CONTENDED_ROUNDS) throw new SeatsLockedError('seats stayed locked by other transactions; retrying with backoff');
      // Other transactions hold the seats we need: they commit within milliseconds.
      await delay(2 + Math.random() * 10 * Math.min(round, 5));
    }
  }

  /** `batch` is validated against the catalog by the worker's dispatcher. */
  async function processBookings({ requests: batch, sentWithAdmission }: BookingBatch, job: Job): Promise<BatchSummary> {
    // The first start of a batch moves the line on (parked requests too: they left the queue for
    // their show's line, and count in again when released); a crashed worker's batch started
    // again does not. Parked first, in the same script, so the line moves on just before its
    // requests are decided.
    const requests = await ownUnparked(batch, job.id!, job.attemptsStarted <= 1, sentWithAdmission === true);
    const settled = await Promise.allSettled(requests.map((request) => decideRequest(request, job.attemptsMade + 1)));
    const fresh: Array<[string, BookingResult]> = [];
    const changed: ChangedBooking[] = [];
    const observed: Array<readonly [BookingJob, DecidedBooking]> = [];
    let decided = 0;
    let held = 0;
    let failure: unknown;
    settled.forEach((outcome, index) => {
      if (outcome.status === 'rejected') {
        failure ??= outcome.reason;
        return;
      }
      decided++;
      const { result } = outcome.value;
      if (result.status === 'HELD') held++;
      if (!outcome.value.fresh) return;
      const request = requests[index]!;
      observed.push([request, outcome.value.booking]);
      fresh.push([request.id, result]);
      changed.push({ id: request.id, status: result.status, showId: request.show_id, seats: result.seats });
    });
    if (observed.length > 0) deps.observer?.decided?.(observed);
    // Recorded even when some failed: those are decided for good, and the retry finds them so.
    // A redelivered request's entry is left as it is: either its first run recorded it, or it
    // still names this job, and once the job is done polls read the decision from Postgres.
    // Published after the record, by the record's own script (one PUBLISH for the job, in the
    // same round trip), so a stream that looks again on the message finds the decision; sent
    // on its own when there is no index or recording failed, since the decisions are committed
    // (the stream then reads them from Postgres once the job is done).
    const message = deps.changes?.prepareBookings(changed) ?? null;
    if (!deps.index || fresh.length === 0) {
      if (message) deps.changes!.send(message);
    } else {
      try {
        await deps.index.recordResults(fresh, message ?? undefined);
        if (message) deps.changes!.published(message);
      } catch (error) {
        if (message) deps.changes!.send(message);
        throw error;
      }
    }
    if (failure !== undefined) throw failure;
    await deps.onBatchDecided?.(job.id!);
    return { decided, held, failed: decided - held };
  }

  /**
   * The requests of a batch to decide now. Those of a show paused since the batch was queued go
   * back into the show's held line at their original place (shared/queue/show-line.ts), and
   * resume decides them in line order. A batch the API sent with its admission (`screen`) may
   * carry requests the admission put elsewhere (RequestIndex.admitWithJob): those are not this
   * job's. One script for the job (RequestIndex.startBatch), which also marks a first start taken.
   */
  async function ownUnparked(requests: BookingJob[], jobId: string, firstStart: boolean, screen: boolean): Promise<BookingJob[]> {
    const index = deps.index;
    if (!index) return requests;
    const parts = await index.startBatch(requests, jobId, firstStart, screen);
    if (parts.every((part) => part === 'decide')) return requests;
    const parked = parts.filter((part) => part === 'parked').length;
    if (parked > 0) deps.logger.info({ jobId, parked }, 'show paused: requests parked back in its line');
    return requests.filter((_, at) => parts[at] === 'decide');
  }

  return { processBookings, decideRequest, batcher };
}
