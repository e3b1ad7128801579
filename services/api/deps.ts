import type { Queue } from 'bullmq';
import type pg from 'pg';
import type { LayoutCache } from '../../shared/booking/shows.js';
import type { AvailableSeats } from '../../shared/booking/available-seats.js';
import type { BookingStanding } from '../../shared/booking/standing.js';
import type { Config } from '../../shared/config.js';
import type { Database } from '../../shared/db/client.js';
import type { ChangePublisher } from '../../shared/live/changes.js';
import type { Logger } from '../../shared/logger.js';
import type { LineSizes } from '../../shared/queue/line-size.js';
import type { RedisClient } from '../../shared/redis.js';
import type { BookingIntake } from './booking-intake.js';
import type { LiveUpdates } from './live/live-updates.js';
import type { WarmUp } from './warmup.js';

/**
 * Everything the HTTP layer needs, built by the entry point (or a test) and passed to buildApp.
 * Each route plugin takes only the part it uses (`Pick<AppDeps, ...>`), so a route's
 * dependencies are visible in its signature and routes never import the app that mounts them.
 */
export type AppDeps = {
  config: Config;
  adminToken: string;
  db: Database;
  pool: pg.Pool;
  redis: RedisClient;
  intake: BookingIntake;
  /** Where booking X stands (Redis first, then Postgres): polls, reads and settles ask it. */
  standing: BookingStanding;
  layouts: LayoutCache;
  /** Requests in line per show: the `in_line` of show views. */
  lines: LineSizes;
  /** Publishes the changes this process makes (settles) for every replica's live streams. */
  changes: ChangePublisher;
  /** The seats AVAILABLE per show in Redis (queued requests' outlook): recounted after changes the fan-out does not carry. */
  availableSeats: AvailableSeats;
  /** This process's live streams: what they watch, their cap, the subscriber they ride on. */
  live: LiveUpdates;
  logger: Logger;
  /** Every queue by name: metrics read their depth, the admin board shows them. */
  queues: Record<string, Queue>;
  /** The requests this process sends itself after starting: /ready waits for them; they skip the rate limit and the access log. */
  warmUp?: WarmUp;
};
