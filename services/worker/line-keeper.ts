import { randomUUID } from 'node:crypto';
import { Job, type Queue } from 'bullmq';
import { drawOrder } from '../../shared/booking/draw.js';
import type { Logger } from '../../shared/logger.js';
import { JOBS, type BookingBatch, type BookingJob } from '../../shared/queue/catalog.js';
import type { RequestIndex } from '../../shared/queue/request-index.js';

/**
 * The worker's side of the held lines (shared/queue/show-line.ts): every worker process looks,
 * a few times a second, for shows whose line is due, draws a waiting room whose sale has
 * opened, and releases held lines into batch jobs in line order. One keeper per show at a time
 * (a lease); every step is safe to repeat, so a keeper killed midway leaves a line the next
 * one finishes the same way:
 *
 * - the draw is one script that moves the whole room into the held line in HMAC order or does
 *   nothing (drawn already, or the room changed: read again); the order is a function of the
 *   seed and the ids, so a redo finds the same order;
 * - a release adds a batch job named by the show and the gate's count of released batches, then
 *   one script takes its requests out of the line and moves the count on. Killed between the
 *   two, the next keeper adds the same job id (BullMQ keeps the first), reads the requests that
 *   job really carries, and takes those out.
 */

export type LineKeeperDeps = {
  index: RequestIndex;
  queue: Queue;
  /** The show's 32-byte draw seed (Postgres); null when the show is gone. */
  seedOf: (showId: string) => Promise<Buffer | null>;
  /**
   * The show's sales_open_at as Postgres has it now (null when the show is gone): the one truth
   * once PATCH /admin/shows/:id may have moved it, where the gate's copy is what an API process
   * last wrote (its plan cache may be up to PLAN_MAX_AGE_MS stale).
   */
  salesOpenAtOf: (showId: string) => Promise<Date | null>;
  /** The show's room was just drawn: its line now has places, and their outlook needs the seats counted. */
  onDrawn?: (showId: string) => void;
  /** Requests per released batch job (ENQUEUE_BATCH_SIZE: the API's batches are no larger). */
  batchSize: number;
  logger: Logger;
  /** How often due lines are looked for: the draw starts within this of sales_open_at. */
  intervalMs?: number;
};

/** How long a keeper's lease on a show lasts unrenewed (renewed after each step). */
const LEASE_MS = 10_000;
/** Shows looked at per tick. */
const SHOWS_PER_TICK = 20;
/** Reads of a room that keeps changing under the draw (requests joining or leaving) before the next tick. */
const DRAW_ATTEMPTS = 5;

export type LineKeeper = { tick: () => Promise<void>; close: () => Promise<void> };

export function startLineKeeper(deps: LineKeeperDeps): LineKeeper {
  const line = deps.index.line;
  const owner = randomUUID();
  let running: Promise<void> | null = null;
  let closed = false;

  async function keep(showId: string): Promise<void> {
    const now = Date.now();
    let gate = await line.gate(showId);
    if (!gate.drawnAt && (await line.hasRoom(showId))) {
      const opensAt = (await deps.salesOpenAtOf(showId))?.getTime() ?? gate.openAt;
      if (opensAt !== null && now < opensAt) {
        await line.scheduleAt(showId, opensAt);
        return;
      }
      await draw(showId);
      gate = await line.gate(showId);
    }
    while (!closed) {
      if (gate.paused) {
        await line.unscheduleIfIdle(showId);
        return;
      }
      const requests = await line.head(showId, deps.batchSize);
      if (requests.length === 0) {
        // Nothing left (or a newcomer joined meanwhile: the next tick releases it).
        await line.unscheduleIfIdle(showId);
        return;
      }
      await release(showId, gate.batches, requests);
      if (!(await line.lease(showId, owner, LEASE_MS))) return;
      gate = await line.gate(showId);
    }
  }

  async function draw(showId: string): Promise<void> {
    const seed = await deps.seedOf(showId);
    if (!seed) {
      deps.logger.warn({ showId }, 'waiting room of a show that no longer exists: not drawn');
      return;
    }
    for (let attempt = 1; attempt <= DRAW_ATTEMPTS; attempt++) {
      const entries = drawOrder(seed, await line.roomIds(showId));
      if ((await line.draw(showId, new Date(), entries)) === 'drawn') {
        deps.logger.info({ showId, entries: entries.length }, 'waiting room drawn');
        deps.onDrawn?.(showId);
        return;
      }
    }
  }

  async function release(showId: string, batches: number, head: BookingJob[]): Promise<void> {
    const jobId = `line-${showId}-${batches}`;
    await deps.queue.add('process-bookings', { requests: head }, { ...JOBS['process-bookings'].options, jobId });
    // The job a keeper killed after its add left behind keeps its own requests: release those.
    const stored = (await Job.fromId<BookingBatch>(deps.queue, jobId))?.data.requests ?? head;
    const ids = stored.map((request) => request.id);
    const released = await deps.index.released(showId, jobId, ids);
    deps.logger.debug({ showId, jobId, released }, 'held line released');
  }

  async function tick(): Promise<void> {
    for (const showId of await line.due(Date.now(), SHOWS_PER_TICK)) {
      if (closed) return;
      if (!(await line.lease(showId, owner, LEASE_MS))) continue;
      try {
        await keep(showId);
      } finally {
        await line.unlease(showId, owner).catch(() => {});
      }
    }
  }

  const timer = setInterval(() => {
    if (running || closed) return;
    running = tick()
      .catch((error: unknown) => deps.logger.warn({ err: error instanceof Error ? error.message : error }, 'line keeper tick failed; retried next tick'))
      .finally(() => {
        running = null;
      });
  }, deps.intervalMs ?? 200);
  timer.unref();

  return {
    tick,
    close: async () => {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}
