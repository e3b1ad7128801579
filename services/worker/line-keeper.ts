import { randomUUID } from 'node:crypto';
import { Job, type Queue } from 'bullmq';
import { drawOrder } from '../../shared/booking/draw.js';
import type { Logger } from '../../shared/logger.js';
import { JOBS, type BookingBatch, type BookingJob } from '../../shared/queue/catalog.js';
import type { RequestIndex } from '../../shared/queue/request-index.js';
import { releasedJobId, showOfReleasedJob } from '../../shared/queue/show-line.js';

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
 *   job really carries, and takes those out;
 * - a show has one released batch in flight at a time, so however many worker processes run,
 *   no two of its batches are decided side by side (the later one could take the seats the
 *   earlier one was about to claim). The worker that decided a batch releases the next at once
 *   (batchDecided); a keeper's tick does it instead when that worker died or could not, once
 *   BullMQ has finished the job (a killed worker's job runs again first, stalled-job recovery).
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
  /** Requests per released batch job (LINE_RELEASE_BATCH_SIZE). */
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

export type LineKeeper = {
  tick: () => Promise<void>;
  /**
   * A worker decided every request of batch job `jobId`: when it was a show's released batch in
   * flight, the show's next batch is released now (no wait for a tick). Never throws: the
   * keepers' ticks release it anyway once BullMQ has finished the job.
   */
  batchDecided: (jobId: string) => Promise<void>;
  close: () => Promise<void>;
};

/** BullMQ states of a job that will not decide anything more: the next batch may go. */
const FINISHED_STATES = new Set(['completed', 'failed', 'unknown']);

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
    if (gate.inflight !== null) {
      // The worker deciding it hands on itself (batchDecided); a job BullMQ has finished without
      // that (its worker died after deciding, or could not reach Redis) is done all the same. A
      // job that failed for good waits for an operator: the line does not wait with it.
      const state = await deps.queue.getJobState(gate.inflight);
      if (!FINISHED_STATES.has(state)) return;
      await line.releaseDecided(showId, gate.inflight);
      deps.logger.info({ showId, jobId: gate.inflight, state }, 'released batch finished without handing on: releasing the next');
    }
    await releaseNext(showId, gate);
  }

  /** Releases the head of the show's held line, unless it is paused (or has nothing left). */
  async function releaseNext(showId: string, gate: { paused: boolean; batches: number }): Promise<void> {
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
  }

  async function batchDecided(jobId: string): Promise<void> {
    const showId = showOfReleasedJob(jobId);
    if (!showId) return;
    // Its own lease owner: this process's keeper may be looking at the show right now, and two
    // releases must not interleave. Lease taken by another keeper: its tick (or the next) sees
    // the job finished and releases the next batch.
    const handoff = randomUUID();
    try {
      if (!(await line.lease(showId, handoff, LEASE_MS))) return;
      try {
        if (!(await line.releaseDecided(showId, jobId))) return;
        await releaseNext(showId, await line.gate(showId));
      } finally {
        await line.unlease(showId, handoff);
      }
    } catch (error) {
      deps.logger.warn({ showId, jobId, err: error instanceof Error ? error.message : error }, 'could not release the next batch of a line; a keeper will');
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
    const jobId = releasedJobId(showId, batches);
    await deps.queue.add('process-bookings', { requests: head }, { ...JOBS['process-bookings'].options, jobId });
    // The job a keeper killed after its add left behind keeps its own requests: release those.
    const stored = (await Job.fromId<BookingBatch>(deps.queue, jobId))?.data.requests ?? head;
    const ids = stored.map((request) => request.id);
    const released = await line.released(showId, jobId, deps.index.acceptedCounterKey, ids.map((id) => deps.index.keyOf(id)), ids);
    deps.logger.debug({ showId, jobId, released }, 'held line released');
  }

  /**
   * A released batch of the show is still being decided (or waits for its retry): nothing to do
   * until it hands on. Looked at without the lease, so keepers polling a show mid-drain do not
   * hold the lease its worker's hand-off needs.
   */
  async function deciding(showId: string): Promise<boolean> {
    const { inflight } = await line.gate(showId);
    return inflight !== null && !FINISHED_STATES.has(await deps.queue.getJobState(inflight));
  }

  async function tick(): Promise<void> {
    for (const showId of await line.due(Date.now(), SHOWS_PER_TICK)) {
      if (closed) return;
      if (await deciding(showId)) continue;
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
    batchDecided,
    close: async () => {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}
