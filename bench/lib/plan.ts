import { randomBytes } from 'node:crypto';
import { seatLabel, type Seating } from '../../shared/booking/layout.js';
import type { HttpClient } from './http.js';
import type { BurstOptions, ShowSource } from './options.js';
import { Random } from './random.js';

/**
 * What the generator books: the shows (found or created through the admin API) and, for each
 * request number, its JSON body. Bodies are built when sent, from the seeded generator, so the
 * plan costs no memory per request.
 */

export type PlannedSection = { name: string; rows: number; seatsPerRow: number; seats: number };
export type PlannedShow = {
  id: string;
  seating: Seating;
  totalSeats: number;
  sections: PlannedSection[];
  salesOpenAt: string;
  /** The draw's commitment as the show published it before anyone waited. */
  seedSha256: string;
};

type ShowDetailBody = {
  id: string;
  seating: Seating;
  total_seats: number;
  sales_open_at: string;
  seed_sha256: string;
  sections: Array<{ name: string; rows: number; seats_per_row: number; total_seats: number }>;
};

function toPlanned(show: ShowDetailBody): PlannedShow {
  return {
    id: show.id,
    seating: show.seating,
    totalSeats: show.total_seats,
    sections: show.sections.map((s) => ({ name: s.name, rows: s.rows, seatsPerRow: s.seats_per_row, seats: s.total_seats })),
    salesOpenAt: show.sales_open_at,
    seedSha256: show.seed_sha256,
  };
}

export class PlanError extends Error {
  override name = 'PlanError';
}

/** `salesOpenAt`: the created shows' opening (a scheduled sale); absent, they are on sale at once. */
export async function prepareShows(
  http: HttpClient,
  source: ShowSource,
  adminToken: string | undefined,
  salesOpenAt: Date | null = null,
): Promise<PlannedShow[]> {
  if (source.kind === 'existing') {
    return Promise.all(
      source.ids.map(async (id) => {
        const answer = await http.send('GET', `/shows/${id}`);
        if (answer.status !== 200) throw new PlanError(`show ${id}: GET /shows/${id} answered ${answer.status}`);
        return toPlanned(answer.body as ShowDetailBody);
      }),
    );
  }
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${adminToken ?? ''}` };
  const shows: PlannedShow[] = [];
  for (let n = 1; n <= source.count; n++) {
    const body = {
      name: `Burst ${new Date().toISOString()} #${n}`,
      start_time: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      ...(salesOpenAt ? { sales_open_at: salesOpenAt.toISOString() } : {}),
      ...(source.kind === 'create'
        ? { total_seats: source.seats }
        : {
            sections: source.sections.map((s) => ({ name: s.name, rows: s.rows, seats_per_row: s.seatsPerRow, price_cents: s.priceCents })),
          }),
    };
    const answer = await http.send('POST', '/admin/shows', JSON.stringify(body), headers);
    if (answer.status !== 201) throw new PlanError(`creating a show answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    shows.push(toPlanned(answer.body as ShowDetailBody));
  }
  return shows;
}

export type PlannedRequest = { show: PlannedShow; body: string; seatCount: number; idempotencyKey: string | null };

export class RequestPlan {
  private readonly random: Random;
  /** Distinguishes this run's customers from earlier runs' on the same show (the per-customer cap). */
  private readonly runTag = randomBytes(4).toString('hex');

  constructor(
    private readonly shows: PlannedShow[],
    private readonly options: Pick<BurstOptions, 'seatCount' | 'specificSeatsRatio' | 'waitlistRatio' | 'section' | 'customers' | 'idempotencyKeys' | 'seed'>,
  ) {
    if (shows.length === 0) throw new PlanError('no show to book');
    if (options.section !== null) {
      for (const show of shows) {
        if (!show.sections.some((s) => s.name === options.section)) throw new PlanError(`show ${show.id} has no section "${options.section}"`);
      }
    }
    this.random = new Random(options.seed);
  }

  /** Request number `index`: its show (round robin), seat count, and best-available or specific seats. */
  request(index: number): PlannedRequest {
    const show = this.shows[index % this.shows.length]!;
    const { min, max } = this.options.seatCount;
    const seatCount = min === max ? min : this.random.int(min, max);
    const customer = this.options.customers === null ? index : index % this.options.customers;
    const email = `burst-${this.runTag}-${customer}@bench.example`;
    const idempotencyKey = this.options.idempotencyKeys ? `burst-${this.runTag}-${index}` : null;
    const specific = this.options.specificSeatsRatio > 0 && this.random.next() < this.options.specificSeatsRatio ? this.pickSeats(show, seatCount) : null;
    // Drawn only when asked for, so seeded runs without it keep their sequence.
    const waitlist = !specific && this.options.waitlistRatio > 0 && this.random.next() < this.options.waitlistRatio;
    const body = specific
      ? JSON.stringify({ show_id: show.id, customer_email: email, seats: specific })
      : JSON.stringify({
          show_id: show.id,
          customer_email: email,
          seat_count: seatCount,
          ...(this.options.section ? { section: this.options.section } : {}),
          ...(waitlist ? { waitlist: true } : {}),
        });
    return { show, body, seatCount, idempotencyKey };
  }

  /** Adjacent seats in one row, as a person picking from a seat map would; null if no row is wide enough. */
  private pickSeats(show: PlannedShow, count: number): string[] | null {
    const candidates = show.sections.filter((s) => s.seatsPerRow >= count && (this.options.section === null || s.name === this.options.section));
    if (candidates.length === 0) return null;
    // Weighted by size, so small premium sections are not over-asked.
    let pick = this.random.next() * candidates.reduce((sum, s) => sum + s.seats, 0);
    let section = candidates[0]!;
    for (const candidate of candidates) {
      section = candidate;
      pick -= candidate.seats;
      if (pick < 0) break;
    }
    const row = this.random.int(1, section.rows);
    const first = this.random.int(1, section.seatsPerRow - count + 1);
    const labels: string[] = [];
    for (let n = first; n < first + count; n++) labels.push(seatLabel(show.seating, section.name, row, n));
    return labels;
  }
}
