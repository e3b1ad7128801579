import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { Negotiator } from '@fastify/accept-negotiator';
import { listSeats, seatsFingerprint, type SeatView } from '../../shared/booking/shows.js';
import type { Database } from '../../shared/db/client.js';

/**
 * GET /shows/:id/seats served from memory. A 100,000-seat map is 9.5 MB of JSON: building it
 * per request starved bookings (two readers moved POST /booking's p50 to 370 ms). Here each
 * API process builds a show's map once per change, keeps it serialised and compressed, and
 * answers repeated reads with the same bytes or a 304.
 *
 * Freshness: a snapshot is trusted for MAX_STALENESS_MS after its check started. After that,
 * the next read checks the seats' fingerprint (one row from Postgres) and rebuilds only if it
 * changed. So a seat change, or a hold lapsing, shows within MAX_STALENESS_MS plus one check.
 * Concurrent reads of a show share one check and one build (single-flight).
 */

export const MAX_STALENESS_MS = 1_000;

/** Shows kept at once per process; a 100,000-seat show holds about 30 MB (rows, JSON, compressed). */
const MAX_SHOWS = 16;

export type Encoding = 'br' | 'gzip' | 'identity';

export type SeatMapBody = {
  /** Strong ETag: a hash of the JSON, so equal maps have equal tags across rebuilds and replicas. */
  etag: string;
  /** The body in an encoding the client accepts (gzip or br are built once, on first demand). */
  encoded: (encoding: Encoding) => Promise<Buffer>;
};

type Snapshot = { fingerprint: string; seats: SeatView[]; bodies: Map<string, SeatMapBody> };
type Entry = { checkedAt: number; snapshot: Promise<Snapshot> };

const compressors: Record<Exclude<Encoding, 'identity'>, (json: Buffer) => Promise<Buffer>> = {
  // zlib runs on libuv's thread pool, off the event loop that accepts bookings.
  gzip: (json) => promisify(gzip)(json, { level: 6 }),
  // Quality 4: Brotli's default of 11 takes seconds on 9.5 MB for a few percent.
  br: (json) => promisify(brotliCompress)(json, { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } }),
};

const encodings = new Negotiator<Encoding>({ supportedValues: ['br', 'gzip', 'identity'] });

/** The encoding to answer with for an Accept-Encoding header (identity when none fits). */
export function negotiateEncoding(acceptEncoding: string | undefined): Encoding {
  return (acceptEncoding && encodings.negotiate(acceptEncoding)) || 'identity';
}

/** Whether an If-None-Match header names `etag` (weak comparison, as RFC 9110 asks for GET). */
export function matchesETag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

function bodyOf(seats: SeatView[]): SeatMapBody {
  const json = Buffer.from(JSON.stringify(seats));
  const etag = `"${createHash('sha256').update(json).digest('base64url').slice(0, 32)}"`;
  const encoded = new Map<Encoding, Promise<Buffer>>([['identity', Promise.resolve(json)]]);
  return {
    etag,
    encoded: (encoding) => {
      let body = encoded.get(encoding);
      if (!body) {
        body = compressors[encoding as Exclude<Encoding, 'identity'>](json);
        encoded.set(encoding, body);
      }
      return body;
    },
  };
}

export class SeatMapCache {
  private readonly entries = new Map<string, Entry>();
  /** Seat lists read from Postgres so far: a test sees concurrent reads share one. */
  builds = 0;

  constructor(
    private readonly db: Database,
    private readonly now: () => number = Date.now,
  ) {}

  /** The seat map of a show, whole or one section's seats, in its current (≤ MAX_STALENESS_MS old) state. */
  async get(showId: string, section?: string): Promise<SeatMapBody> {
    const snapshot = await this.snapshot(showId);
    const key = section ?? '';
    let body = snapshot.bodies.get(key);
    if (!body) {
      body = bodyOf(section === undefined ? snapshot.seats : snapshot.seats.filter((seat) => seat.section === section));
      snapshot.bodies.set(key, body);
    }
    return body;
  }

  private snapshot(showId: string): Promise<Snapshot> {
    const entry = this.entries.get(showId);
    if (entry && this.now() - entry.checkedAt < MAX_STALENESS_MS) return entry.snapshot;
    const checkedAt = this.now();
    const snapshot = this.refresh(showId, entry?.snapshot);
    // Set before awaiting: reads arriving meanwhile wait on this same check.
    this.entries.delete(showId);
    this.entries.set(showId, { checkedAt, snapshot });
    if (this.entries.size > MAX_SHOWS) this.entries.delete(this.entries.keys().next().value!);
    snapshot.catch(() => {
      // A failed check is not kept: the next read tries again (and answers 503 meanwhile).
      if (this.entries.get(showId)?.snapshot === snapshot) this.entries.delete(showId);
    });
    return snapshot;
  }

  private async refresh(showId: string, previous: Promise<Snapshot> | undefined): Promise<Snapshot> {
    const old = await previous?.catch(() => undefined);
    // One snapshot of the database for both reads: the fingerprint describes exactly these seats.
    return this.db.transaction(
      async (tx) => {
        const fingerprint = await seatsFingerprint(tx, showId);
        if (old && old.fingerprint === fingerprint) return old;
        this.builds++;
        return { fingerprint, seats: await listSeats(tx, showId), bodies: new Map() };
      },
      { isolationLevel: 'repeatable read', accessMode: 'read only' },
    );
  }
}
