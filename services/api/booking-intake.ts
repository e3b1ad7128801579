import { createHash, randomUUID } from 'node:crypto';
import { Job, type Queue } from 'bullmq';
import type { RedisClient } from '../../shared/redis.js';
import { AppError } from './errors.js';
import type { BookingStanding, QueuePhase } from '../../shared/booking/standing.js';
import { maskEmail } from '../../shared/booking/view.js';
import { JOBS, type BookingBatch, type BookingJob } from '../../shared/queue/catalog.js';
import { RequestIndex, type AdmissionItem, type Admitted } from '../../shared/queue/request-index.js';
import { TurnBatcher } from '../../shared/queue/turn-batcher.js';

/**
 * The API's side of the queue: accepting a booking request into Redis, with idempotency keys
 * and load shedding. Reading a request's state back is shared/booking/standing.ts's.
 *
 * Requests accepted in the same turn of the event loop go into one batch job (at most
 * `batchSize`): under a burst that is dozens of requests per BullMQ job, which is what makes
 * the queue cheap enough to keep up (bench/RESULTS.md); under light load a batch is one request
 * and waits for nothing. A request is answered 202 only once its batch job is in Redis.
 */

/** Keys are kept a little over the promised 24 hours. */
const IDEMPOTENCY_TTL_SECONDS = 25 * 3_600;
/**
 * How long a replay waits for the first attempt with its key to finish enqueueing. That takes
 * milliseconds; a claim still unsettled after this was left by an attempt that died midway.
 */
const CLAIM_SETTLE_WAIT_MS = 2_000;
/** How long a sampled queue depth is trusted when no batch was enqueued meanwhile. */
const DEPTH_SAMPLE_MS = 250;

/** What an idempotency key stores: the request it was first used for, and whether that got enqueued. */
type IdempotencyClaim = { id: string; fingerprint: string; queued: boolean };

/** `position` is null in the waiting room (the draw gives places) and for a replay of a decided request. */
export type Submitted = { id: string; replayed: boolean; position: number | null; phase: QueuePhase | null };

/** When the show's sale opens (ms): a request before it waits in the show's waiting room. */
export type SaleOpening = { salesOpenAt: number };

type Admission = { job: BookingJob; sale: SaleOpening | null };
type AdmissionOutcome = { position: number | null; phase: QueuePhase } | { error: unknown };

export class BookingIntake {
  private depth = { value: 0, sampledAt: 0 };
  /** Until when (ms) a show's batches go the two-step way: its line took a request of this API's lately. */
  private readonly heldShows = new Map<string, number>();
  /** An admission ran the usual way since this process started or Redis last forgot the script (addBatch). */
  private admitScriptLoaded = false;
  private readonly index: RequestIndex;
  private readonly batcher: TurnBatcher<Admission, AdmissionOutcome>;

  constructor(
    private readonly queue: Queue,
    private readonly redis: RedisClient,
    private readonly options: {
      maxQueueDepth: number;
      keyPrefix: string;
      batchSize: number;
      /** ENQUEUE_LINGER_MS: how long a batch gathers requests (0: one event-loop turn). */
      lingerMs?: number;
      /** Where a replayed key's first request is now: still queued, decided, or lost. */
      standing: Pick<BookingStanding, 'inQueue' | 'isDecided'>;
    },
  ) {
    this.index = new RequestIndex(redis, queue);
    this.batcher = new TurnBatcher((admissions) => this.addBatch(admissions), options.batchSize, options.lingerMs);
  }

  /**
   * Enqueues a booking request. With an idempotency key (one customer's: the same key from two
   * customers names two requests), the first request with that key wins:
   * a repeat with the same body gets the same id back (and no second job), a repeat with a
   * different body is refused with 422.
   */
  async submit(job: BookingJob, idempotencyKey: string | undefined, sale: SaleOpening | null = null): Promise<Submitted> {
    await this.shedIfOverloaded();
    if (!idempotencyKey) return { id: job.id, replayed: false, ...(await this.enqueue(job, sale)) };
    // Scoped to the customer, as payment APIs scope keys to an account: a key someone else
    // guessed and used first cannot block this customer's request.
    const key = `${this.options.keyPrefix}:idem:${sha256(JSON.stringify([job.customer_email.toLowerCase(), idempotencyKey]))}`;
    const fingerprint = sha256(
      // `waitlist` only when asked for: keys sent before the waiting list existed keep their fingerprint.
      JSON.stringify([job.show_id, job.customer_email, job.seat_count, job.section, job.seats, ...(job.waitlist ? [true] : [])]),
    );
    const claim: IdempotencyClaim = { id: job.id, fingerprint, queued: false };
    const claimed = await this.redis.set(key, JSON.stringify(claim), 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
    if (claimed === 'OK') {
      // A failed add keeps the claim: its reply may have been lost after Redis ran it, and a
      // released key would give the client's retry a second booking. The retry finds the claim
      // below, and enqueues the request under the same id when no job carries it.
      let place: Awaited<ReturnType<BookingIntake['enqueue']>>;
      try {
        place = await this.enqueue(job, sale);
      } catch (error) {
        // Refused for good (a second waiting-room entry): nothing was accepted under this key.
        if (error instanceof AppError && error.code === ALREADY_IN_LINE) await this.redis.del(key).catch(() => {});
        throw error;
      }
      // Replays that raced this request wait for this mark rather than enqueue it a second time.
      await this.redis.set(key, JSON.stringify({ ...claim, queued: true }), 'KEEPTTL', 'XX').catch(() => {});
      return { id: job.id, replayed: false, ...place };
    }
    const previous = await this.settledClaim(key);
    if (!previous) return this.submit(job, idempotencyKey, sale); // expired meanwhile
    if (previous.fingerprint !== fingerprint) {
      throw new AppError(422, 'IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key was already used with a different request body', [
        { field: 'Idempotency-Key', problem: 'already used with a different body' },
      ]);
    }
    const current = await this.options.standing.inQueue(previous.id);
    if ((current.state === 'absent' || current.state === 'removed') && !(await this.options.standing.isDecided(previous.id))) {
      // Neither queued nor decided: the first attempt lost its enqueue (Redis went away between
      // the key and the job), or its job was removed. Enqueue it now under the same id, so the
      // request is not lost; were it decided meanwhile after all, the worker would return that
      // decision unchanged.
      return { id: previous.id, replayed: true, ...(await this.enqueue({ ...job, id: previous.id }, sale)) };
    }
    if (current.state !== 'queued') return { id: previous.id, replayed: true, position: null, phase: null };
    const room = current.line?.room === true;
    return { id: previous.id, replayed: true, position: room ? null : current.position, phase: room ? 'WAITING_ROOM' : 'IN_LINE' };
  }

  /**
   * The claim on an idempotency key once its first attempt has enqueued (or given up): a
   * replay racing the first attempt waits for it briefly instead of enqueueing a second copy.
   * Null when the key is gone (expired).
   */
  private async settledClaim(key: string): Promise<IdempotencyClaim | null> {
    const deadline = Date.now() + CLAIM_SETTLE_WAIT_MS;
    for (;;) {
      const stored = await this.redis.get(key);
      const claim = stored ? (JSON.parse(stored) as IdempotencyClaim) : null;
      if (!claim || claim.queued || Date.now() >= deadline) return claim;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Joins the batch being gathered in this turn of the event loop; resolves with the request's place in line. */
  private async enqueue(job: BookingJob, sale: SaleOpening | null): Promise<{ position: number | null; phase: QueuePhase }> {
    const outcome = await this.batcher.add({ job, sale });
    if ('error' in outcome) throw outcome.error;
    return outcome;
  }

  /**
   * Index first, then the job: a poll can never find a job its index entry does not know. The
   * same script puts a request whose show's line is held (waiting room, pause, a line being
   * released) into that line instead (shared/queue/show-line.ts); the job carries the rest. If
   * the add fails, the job's entries are removed again (best effort) and each of its requests
   * is answered with the error: none of them was accepted. Requests in a line are accepted
   * already (Redis keeps them as it keeps jobs).
   *
   * While the batch's shows flow, both go in one round trip (admitWithJob): a turn's requests
   * wait for one Redis reply, not two, and the job carries them all. A request the admission put
   * into a show's line after all stays there (the job leaves it alone); one it asked to be sent
   * again with its JSON is in no job yet, and is admitted again the two-step way.
   */
  private async addBatch(admissions: Admission[]): Promise<AdmissionOutcome[]> {
    const now = Date.now();
    const flowing = this.admitScriptLoaded && admissions.every(({ job, sale }) => !sale || !this.mayWait(job, sale, now));
    if (!flowing) return this.admitThenAdd(admissions);
    const jobId = randomUUID();
    const spec = JOBS['process-bookings'];
    const data: BookingBatch = { requests: admissions.map(({ job }) => job), sentWithAdmission: true };
    const { admission, job } = await this.index.admitWithJob(jobId, this.itemsOf(admissions), (connection) =>
      new Job(this.queue, 'process-bookings', data, { ...this.queue.defaultJobOptions, ...spec.options, jobId }, jobId).addJob(connection),
    );
    if (!admission) {
      // Redis did not know the admission script: nothing was admitted, and the job holds none of these.
      this.admitScriptLoaded = false;
      return this.admitThenAdd(admissions);
    }
    const { admitted, waiting } = admission;
    const direct = admissions.filter((_, index) => admitted[index]!.kind === 'job').map(({ job: request }) => request);
    const addError = job.status === 'rejected' ? job.reason : undefined;
    if (addError !== undefined && direct.length > 0) await this.index.unregister(direct).catch(() => {});
    this.depth = { value: waiting, sampledAt: Date.now() };
    this.rememberHeldLines(admissions, admitted);
    const again = admissions.filter((_, index) => admitted[index]!.kind === 'again');
    const second = again.length > 0 ? await this.admitThenAdd(again, true) : [];
    let next = 0;
    return admitted.map((outcome) => (outcome.kind === 'again' ? second[next++]! : outcomeOf(outcome, addError)));
  }

  /**
   * The admission, then the job's add once it has said which requests go into the job.
   * `withRequests` for requests an admission answered 'again': their JSON goes at once.
   */
  private async admitThenAdd(admissions: Admission[], withRequests = false): Promise<AdmissionOutcome[]> {
    const spec = JOBS['process-bookings'];
    const jobId = randomUUID();
    const { admitted, waiting } = await this.index.admit(jobId, this.itemsOf(admissions), withRequests);
    this.admitScriptLoaded = true;
    const direct = admissions.filter((_, index) => admitted[index]!.kind === 'job').map(({ job }) => job);
    let addError: unknown;
    if (direct.length > 0) {
      try {
        await this.queue.add('process-bookings', { requests: direct } satisfies BookingBatch, { ...spec.options, jobId });
      } catch (error) {
        await this.index.unregister(direct).catch(() => {});
        addError = error;
      }
    }
    this.depth = { value: waiting, sampledAt: Date.now() };
    this.rememberHeldLines(admissions, admitted);
    return admitted.map((outcome) => outcomeOf(outcome, addError));
  }

  /** The copies the index keeps carry the email masked, as the public view shows it: the address itself stays inside the job (or the line) alone. */
  private itemsOf(admissions: readonly Admission[]): AdmissionItem[] {
    return admissions.map(({ job, sale }) => ({
      id: job.id,
      copy: { ...job, customer_email: maskEmail(job.customer_email), idempotency_key: null },
      line: sale ? { request: job, salesOpenAt: sale.salesOpenAt } : null,
    }));
  }

  /**
   * Whether a request of a line-aware show may have to wait in the show's line: accepted before
   * its opening (the waiting room), or its show's line was held at this API's last admission of
   * it, a moment ago. Such a batch goes the two-step way, so that jobs sent with their admission
   * seldom carry requests that are not theirs.
   */
  private mayWait(job: BookingJob, sale: SaleOpening, now: number): boolean {
    if (Date.parse(job.accepted_at) < sale.salesOpenAt) return true;
    const heldUntil = this.heldShows.get(job.show_id);
    if (heldUntil === undefined) return false;
    if (heldUntil > now) return true;
    this.heldShows.delete(job.show_id);
    return false;
  }

  /** The shows whose line took one of these requests: their next turns go the two-step way a while (mayWait). */
  private rememberHeldLines(admissions: readonly Admission[], admitted: ReadonlyArray<Admitted | { kind: 'again' }>): void {
    const until = Date.now() + HELD_LINE_MEMORY_MS;
    admitted.forEach((outcome, index) => {
      if (outcome.kind === 'held' || outcome.kind === 'room' || outcome.kind === 'again') this.heldShows.set(admissions[index]!.job.show_id, until);
    });
  }

  /** The cheap path under overload: refuse at once rather than grow the queue without bound. */
  private async shedIfOverloaded(): Promise<void> {
    const now = Date.now();
    if (now - this.depth.sampledAt > DEPTH_SAMPLE_MS) {
      this.depth = { value: await this.index.waiting(), sampledAt: now };
    }
    if (this.depth.value >= this.options.maxQueueDepth) {
      throw new AppError(503, 'QUEUE_FULL', 'Too many requests are waiting; try again shortly', undefined, 5);
    }
  }
}

const ALREADY_IN_LINE = 'ALREADY_IN_LINE';

/** What a request admitted into a job, a line, or refused is answered (a failed add fails the job's). */
function outcomeOf(outcome: Admitted, addError: unknown): AdmissionOutcome {
  switch (outcome.kind) {
    case 'job':
      return addError === undefined ? { position: outcome.position, phase: 'IN_LINE' } : { error: addError };
    case 'held':
      return { position: outcome.position, phase: 'IN_LINE' };
    case 'room':
      return { position: null, phase: 'WAITING_ROOM' };
    case 'dup':
      // Never the other entry's id: an id is its bearer's capability to confirm or cancel.
      return {
        error: new AppError(409, ALREADY_IN_LINE, 'This customer already has a request waiting in this show\'s waiting room', [
          { field: 'customer_email', problem: 'already in this show\'s waiting room' },
        ]),
      };
  }
}

/** How long after a show's line took a request this API admits the show's batches the two-step way (addBatch). */
const HELD_LINE_MEMORY_MS = 1_000;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
