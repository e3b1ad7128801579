import type { Database } from '../db/client.js';
import type { RedisClient } from '../redis.js';
import { scopeOf, type ShowLine } from '../queue/show-line.js';
import { availableBySection } from './shows.js';

/**
 * The seats AVAILABLE now per show and per section, kept in Redis so a queued request's
 * `outlook` (shared/booking/standing.ts) is computed without Postgres. Every writer that changes
 * seats already says so through the live-updates fan-out (shared/live/changes.ts: decision
 * batches, the expiry sweep, settles, refunds, waiting-list offers); the same call recounts the
 * show from Postgres here, afterwards and coalesced: one recount in flight per show and process,
 * and at most one more queued behind it however many changes arrive meanwhile.
 *
 * Staleness: a change committed at time t is in the counts once the recount that starts after t
 * has written, i.e. within two recount durations (one in flight, then the queued one; a recount
 * is one grouped count over the show's seats). Writes from several processes can arrive out of
 * order, so each carries the time its count started and an older one never overwrites a newer
 * one. A writer that dies between its commit and its recount leaves the counts stale until the
 * show's next change (the next decision, expiry or settle): the outlook is advice, never a
 * decision.
 *
 * The hash (ShowLine's `available` key): `*` the show's seats AVAILABLE, `s:<section>` a
 * section's, `at` when the count started (ms).
 */

/** KEYS: the show's hash. ARGV: the count's start (ms), then field, value pairs. Keeps the newest count. */
const WRITE_SCRIPT = `
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if at > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'at', ARGV[1], unpack(ARGV, 2))
return 1
`;

/** The outlook is advice read by polls every second or so: fresher counts than this buy nothing. */
export const RECOUNT_MIN_INTERVAL_MS = 500;

export class AvailableSeats {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  /** Ends a show's wait between two recounts early (settled(): what was asked is counted now). */
  private readonly wakes = new Map<string, () => void>();
  /** settled() calls in progress: no recount waits out the interval meanwhile. */
  private settling = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly db: Database,
    private readonly line: ShowLine,
    private readonly onError: (error: unknown) => void = () => {},
    private readonly minIntervalMs = RECOUNT_MIN_INTERVAL_MS,
  ) {
    if (typeof (redis as unknown as Record<string, unknown>).availableSeatsWrite !== 'function') {
      redis.defineCommand('availableSeatsWrite', { lua: WRITE_SCRIPT });
    }
  }

  /** Seats of these shows changed (committed): recount them soon, fire and forget. */
  refresh(showIds: Iterable<string>): void {
    for (const showId of new Set(showIds)) {
      if (this.inFlight.has(showId)) {
        this.again.add(showId);
        continue;
      }
      const run = this.recountWhileAsked(showId).finally(() => this.inFlight.delete(showId));
      this.inFlight.set(showId, run);
    }
  }

  /**
   * Resolves once every recount asked for so far has written (tests, graceful close); a recount
   * waiting out the interval runs at once.
   */
  async settled(): Promise<void> {
    this.settling++;
    try {
      for (const wake of this.wakes.values()) wake();
      while (this.inFlight.size > 0) await Promise.all(this.inFlight.values());
    } finally {
      this.settling--;
    }
  }

  /** Recounts one show now and writes the counts. */
  async recount(showId: string): Promise<void> {
    const startedAt = Date.now();
    const sections = await availableBySection(this.db, showId);
    if (sections.length === 0) return;
    const total = sections.reduce((sum, section) => sum + section.available, 0);
    const fields = [scopeOf(null), total, ...sections.flatMap((section) => [scopeOf(section.section), section.available])];
    const write = (this.redis as unknown as { availableSeatsWrite: (keys: number, ...args: Array<string | number>) => Promise<unknown> }).availableSeatsWrite;
    await write.call(this.redis, 1, this.line.keysOf(showId).available, startedAt, ...fields);
  }

  /**
   * Recounts, then keeps the show's slot through the rest of the interval: changes arriving
   * meanwhile only mark it, and one recount after the interval covers them all.
   */
  private async recountWhileAsked(showId: string): Promise<void> {
    do {
      this.again.delete(showId);
      const started = Date.now();
      try {
        await this.recount(showId);
      } catch (error) {
        this.onError(error);
      }
      await this.restUntil(showId, started + this.minIntervalMs);
    } while (this.again.has(showId));
  }

  private async restUntil(showId: string, until: number): Promise<void> {
    const wait = until - Date.now();
    if (wait <= 0 || this.settling > 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(wake, wait);
      function wake() {
        clearTimeout(timer);
        resolve();
      }
      this.wakes.set(showId, wake);
    });
    this.wakes.delete(showId);
  }
}
