import { z } from 'zod';
import type { Config } from '../../shared/config.js';
import { MAX_SEATS_PER_SHOW } from '../../shared/booking/layout.js';
import { HOLD_SECONDS_RANGE, MAX_SEATS_PER_CUSTOMER_RANGE, WAITLIST_OFFER_SECONDS_RANGE, type IntRange } from '../../shared/booking/limits.js';
import { BOOKING_STATUSES, type DecidedStatus } from '../../shared/booking/statuses.js';
import { SALES_STATES, scheduleOrderProblem, scheduleWithDefaults } from '../../shared/booking/sale-schedule.js';
import { BOOKING_EVENT_TYPES, DELIVERY_STATUSES } from '../../shared/webhooks/events.js';
import { urlProblem } from '../../shared/webhooks/target.js';
import { NextLink, pageQuery } from './pagination.js';

/**
 * Request and response schemas of the HTTP contract. They validate input (400 naming the
 * field), serialise output, and feed the OpenAPI document, so the three never disagree.
 */

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(z.object({ field: z.string(), problem: z.string() })).optional(),
  }),
});

export const IdParams = z.object({ id: z.uuid({ message: 'must be a UUID' }) });

const sectionName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9 _-]{0,31}$/, 'letters, digits, space, _ or - (at most 32, starting with a letter or digit)');

/**
 * The instants a show may start at. The ISO format alone admits year 0000 (no such year in
 * Postgres) and 9999-12-31T23:00-14:00 (year 10000 in UTC, which neither Postgres' input format
 * nor `toISOString` round-trips): the date must land in this range once converted to UTC.
 */
export const EARLIEST_START_TIME = '1970-01-01T00:00:00Z';
export const LATEST_START_TIME = '9999-12-31T23:59:59Z';
const startTimeRange = [Date.parse(EARLIEST_START_TIME), Date.parse(LATEST_START_TIME)] as const;

const startTime = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2026-12-01T20:00:00Z' })
  .refine((text) => {
    const instant = Date.parse(text);
    return Number.isFinite(instant) && instant >= startTimeRange[0] && instant <= startTimeRange[1];
  }, `must be between ${EARLIEST_START_TIME} and ${LATEST_START_TIME} (in UTC)`);

/**
 * Free text stored in Postgres and shown to people: no control characters (Postgres refuses a
 * NUL byte outright; the others only garble terminals and logs) and no lone UTF-16 surrogate
 * (not valid Unicode, silently replaced on the way to the database).
 */
// In `u` mode a surrogate pair is one code point, so \p{Cs} matches only a lone surrogate.
const CONTROL_OR_LONE_SURROGATE = /[\p{Cc}\p{Cs}]/u;
export const printableText = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .refine((text) => !CONTROL_OR_LONE_SURROGATE.test(text), 'must not contain control characters or invalid Unicode');

const priceCents = z.number().int().min(0).max(100_000_000);

/** The times of a sale schedule: the same instants a show may start at. */
const saleTime = startTime;

/** A show's overrides of the environment's HOLD_SECONDS, MAX_SEATS_PER_CUSTOMER and WAITLIST_OFFER_SECONDS: the same ranges. */
const intIn = (range: IntRange) => z.number().int().min(range.min).max(range.max);
const holdSeconds = intIn(HOLD_SECONDS_RANGE);
const maxSeatsPerCustomer = intIn(MAX_SEATS_PER_CUSTOMER_RANGE);
const waitlistOfferSeconds = intIn(WAITLIST_OFFER_SECONDS_RANGE);

/**
 * Checks a schedule's order once its defaults are filled in (scheduleWithDefaults), naming the
 * field to change: `waiting_room_opens_at ≤ sales_open_at < sales_close_at`.
 */
function checkScheduleOrder(
  ctx: z.RefinementCtx,
  given: { waiting_room_opens_at?: string | undefined; sales_open_at?: string | undefined; sales_close_at?: string | undefined },
  startTimeText: string,
) {
  const parsed = {
    waitingRoomOpensAt: given.waiting_room_opens_at === undefined ? undefined : new Date(given.waiting_room_opens_at),
    salesOpenAt: given.sales_open_at === undefined ? undefined : new Date(given.sales_open_at),
    salesCloseAt: given.sales_close_at === undefined ? undefined : new Date(given.sales_close_at),
  };
  const defined = Object.fromEntries(Object.entries(parsed).filter(([, value]) => value !== undefined));
  const problem = scheduleOrderProblem(scheduleWithDefaults(defined, new Date(startTimeText), new Date()), defined);
  if (problem) ctx.addIssue({ code: 'custom', path: [problem.field], message: problem.problem });
}

const SectionInput = z
  .object({
    name: sectionName,
    rows: z.number().int().min(1).max(702),
    seats_per_row: z.number().int().min(1).max(10_000),
    price_cents: priceCents,
  })
  .strict();

export const CreateShowBody = z
  .object({
    name: printableText(200),
    start_time: startTime,
    total_seats: z.number().int().min(1).max(MAX_SEATS_PER_SHOW).optional(),
    // The price of every general-admission seat; sections carry their own.
    price_cents: priceCents.optional(),
    sections: z.array(SectionInput).min(1).max(50).optional(),
    waiting_room_opens_at: saleTime.optional().describe('When requests start being taken into the waiting room; default: at once (creation)'),
    sales_open_at: saleTime
      .optional()
      .describe('When the sale opens: the waiting room is drawn and decisions start; default: at once'),
    sales_close_at: saleTime.optional().describe('When requests stop being taken; default: the start_time'),
    hold_seconds: holdSeconds.optional().describe("How long this show's holds last; default: the environment's HOLD_SECONDS"),
    max_seats_per_customer: maxSeatsPerCustomer
      .optional()
      .describe("Seats one customer may hold or own in this show; default: the environment's MAX_SEATS_PER_CUSTOMER"),
    waitlist_offer_seconds: waitlistOfferSeconds
      .optional()
      .describe("How long a waiting-list offer stays open; default: the environment's WAITLIST_OFFER_SECONDS"),
  })
  .strict()
  .superRefine((body, ctx) => {
    checkScheduleOrder(ctx, body, body.start_time);
    if ((body.total_seats === undefined) === (body.sections === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['total_seats'], message: 'give either total_seats or sections, not both or neither' });
    }
    if (body.sections && body.price_cents !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['price_cents'], message: 'goes with total_seats; with sections, give each section its price_cents' });
    }
    if (body.sections) {
      const total = body.sections.reduce((sum, s) => sum + s.rows * s.seats_per_row, 0);
      if (total > MAX_SEATS_PER_SHOW) {
        ctx.addIssue({ code: 'custom', path: ['sections'], message: `at most ${MAX_SEATS_PER_SHOW} seats per show (got ${total})` });
      }
      const names = body.sections.map((s) => s.name);
      const duplicate = names.find((name, index) => names.indexOf(name) !== index);
      if (duplicate) ctx.addIssue({ code: 'custom', path: ['sections'], message: `duplicate section name "${duplicate}"` });
    }
  });

/**
 * PATCH /admin/shows/:id: any of the name, the sale times and the overrides (null puts the
 * environment's value back). Whether a time may still move is the show's state, checked on
 * the row (shared/booking/update-show.ts), not here.
 */
export const UpdateShowBody = z
  .object({
    name: printableText(200).optional(),
    waiting_room_opens_at: saleTime.optional().describe('Only while the current one is ahead, to a time ahead'),
    sales_open_at: saleTime.optional().describe('Only while the current one is ahead (before the draw), to a time ahead'),
    sales_close_at: saleTime.optional().describe('Only while the current one is ahead, to a time ahead'),
    hold_seconds: holdSeconds.nullable().optional().describe("For decisions from now on; null: the environment's HOLD_SECONDS"),
    max_seats_per_customer: maxSeatsPerCustomer
      .nullable()
      .optional()
      .describe("For decisions from now on; null: the environment's MAX_SEATS_PER_CUSTOMER"),
    waitlist_offer_seconds: waitlistOfferSeconds
      .nullable()
      .optional()
      .describe("For offers made from now on; null: the environment's WAITLIST_OFFER_SECONDS"),
  })
  .strict()
  .refine((body) => Object.values(body).some((value) => value !== undefined), 'give at least one field to change');

export const SectionView = z.object({
  name: z.string(),
  price_cents: z.number(),
  rows: z.number(),
  seats_per_row: z.number(),
  total_seats: z.number(),
  available_seats: z.number(),
  held_seats: z.number(),
  booked_seats: z.number(),
});

export const ShowSummary = z.object({
  id: z.string(),
  name: z.string(),
  start_time: z.string(),
  total_seats: z.number(),
  available_seats: z.number(),
  waiting_room_opens_at: z.string().describe('Requests are taken from then (earlier: 409 SALE_NOT_OPEN)'),
  sales_open_at: z.string().describe('The opening: the waiting room is drawn and decisions start'),
  sales_close_at: z.string().describe('Requests are taken until then (later: 409 SALE_CLOSED)'),
  sales_state: z
    .enum(SALES_STATES)
    .describe(
      'SCHEDULED (waiting room not open yet), WAITING_ROOM (taking requests, not deciding), ON_SALE, PAUSED, ' +
        'SOLD_OUT (no seat AVAILABLE or HELD), CLOSED (after sales_close_at)',
    ),
  in_line: z.number().nullable().describe('Requests waiting to be decided; null while the queue cannot be read'),
  seed_sha256: z.string().describe("Lowercase hex SHA-256 of the draw's secret 32-byte seed: the commitment, published before the draw"),
  hold_seconds: z.number().describe("How long this show's holds last (its override, else the environment's)"),
  max_seats_per_customer: z.number().describe('Seats one customer may hold or own in this show (its override, else the environment\'s)'),
  waitlist_offer_seconds: z.number().describe("How long this show's waiting-list offers stay open (its override, else the environment's)"),
});

export const ShowListQuery = z.object({
  ...pageQuery,
  when: z
    .enum(['upcoming', 'past', 'all'], { message: 'must be upcoming, past or all' })
    .default('upcoming')
    .describe('upcoming (default): start_time in the future, soonest first; past: most recent first; all: in start order'),
});

export const ShowList = z.object({ shows: z.array(ShowSummary), next: NextLink });

export const AdminShowListQuery = ShowListQuery.extend({
  when: ShowListQuery.shape.when.unwrap().default('all').describe('all (default): every show in start order; upcoming or past as on GET /shows'),
});

export const ShowDetail = ShowSummary.extend({
  seating: z.enum(['general', 'reserved']),
  created_at: z.string(),
  sections: z.array(SectionView),
});

export const SeatView = z.object({
  label: z.string().describe('What the ticket prints and what `POST /booking` `seats` takes: "VIP-AA-3" (reserved) or "17" (general admission)'),
  section: z.string().describe('The section (tier) the seat is in; "GA" for general admission'),
  row: z.number().describe('Row number within the section, from 1 at the front: for ordering and drawing the map'),
  row_label: z
    .string()
    .nullable()
    .describe('The row as printed in the label: A..Z, then AA, AB.. (row 26 is "Z", 27 is "AA"); null for general admission, which has no rows'),
  number: z.number().describe('Seat number within its row, from 1'),
  price_cents: z.number().describe("The seat's price, in cents"),
  status: z.string().describe('AVAILABLE (a lapsed hold counts as available), HELD (in a live hold), BOOKED (paid)'),
});

export function bookingBody(config: Pick<Config, 'MAX_SEATS_PER_BOOKING'>) {
  const max = config.MAX_SEATS_PER_BOOKING;
  return z
    .object({
      show_id: z.uuid({ message: 'must be a UUID' }),
      customer_email: z
        .email({ message: 'must be an email address' })
        .max(254)
        .transform((email) => email.toLowerCase()),
      seat_count: z
        .number()
        .int()
        .min(1, 'must be at least 1')
        .max(max, `at most ${max} seats per booking`)
        .optional(),
      section: sectionName.optional(),
      seats: z
        .array(z.string().min(1).max(64))
        .min(1, 'must name at least one seat')
        .max(max, `at most ${max} seats per booking`)
        .optional(),
      waitlist: z
        .boolean()
        .optional()
        .describe('Best available only: when the show is sold out, join its waiting list (WAITLISTED) instead of failing SOLD_OUT'),
    })
    .strict()
    .superRefine((body, ctx) => {
      if ((body.seat_count === undefined) === (body.seats === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['seat_count'], message: 'give either seat_count or seats, not both or neither' });
      }
      if (body.seats && body.section !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['section'], message: 'section goes with seat_count, not with seats' });
      }
      if (body.seats && body.waitlist) {
        ctx.addIssue({ code: 'custom', path: ['waitlist'], message: 'the waiting list is for seat_count (best available), not for specific seats' });
      }
      if (body.seats) {
        const duplicate = body.seats.find((label, index) => body.seats!.indexOf(label) !== index);
        if (duplicate) ctx.addIssue({ code: 'custom', path: ['seats'], message: `seat "${duplicate}" is listed twice` });
      }
    });
}
export type BookingBody = z.infer<ReturnType<typeof bookingBody>>;

export const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 visible ASCII characters')
    .optional()
    .describe('Makes retries safe: the same key and body for the same customer_email return the same booking. Keys are scoped to the customer and kept at least 24 hours.'),
});

/** POST /booking's request headers: an Idempotency-Key, and `Prefer: wait=N` for the decision in the same answer. */
export const BookingRequestHeaders = IdempotencyHeaders.extend({
  prefer: z
    .string()
    .optional()
    .describe(
      '`wait=N` (RFC 7240): once queued, wait up to N seconds (at most 30; larger counts as 30) for the decision and answer 200 with it, ' +
        'or 202 as without it when N seconds pass first. Not applied in the waiting room: the draw decides there, the answer is 202 at once',
    ),
});

export const StatusPollHeaders = z.object({
  prefer: z
    .string()
    .optional()
    .describe('`wait=N` (RFC 7240): while QUEUED, wait up to N seconds (at most 30; larger counts as 30) for the decision before answering'),
});

export const StatusPollResponseHeaders = {
  'Retry-After': z.string().regex(/^\d+$/).optional().describe('While QUEUED: seconds to wait before polling again'),
  'Preference-Applied': z.string().optional().describe('`wait=N` when the answer honoured `Prefer: wait=N`'),
};

/** Where a queued request waits (shared/booking/standing.ts): the same fields on the 202, polls and reads. */
const queuePhase = z
  .enum(['WAITING_ROOM', 'IN_LINE'])
  .describe('While QUEUED: WAITING_ROOM until the sale opens and the room is drawn (no position yet), then IN_LINE');
const queuedFields = {
  phase: queuePhase.optional(),
  sales_open_at: z.string().optional().describe('In the WAITING_ROOM: when the sale opens and the room is drawn'),
  position: z
    .number()
    .optional()
    .describe("IN_LINE: the place in the show's held line while it is held (paused, or behind a draw being released), else in the queue; 0 once a worker has it"),
  seats_ahead: z
    .number()
    .optional()
    .describe(
      'IN_LINE: seats asked for by the requests of the same show ahead of it (other shows\' requests never count). Exact in the show\'s held line; ' +
        'in the queue all shows share, from per-show counters, approximate while batches are decided out of order (docs/ARCHITECTURE.md); absent once a worker has it',
    ),
  outlook: z
    .enum(['GOOD', 'UNLIKELY'])
    .optional()
    .describe(
      'With seats_ahead: GOOD when seats_ahead plus its own seats fit in the seats AVAILABLE now in its scope (its section, else the show), ' +
        'UNLIKELY otherwise (holds may still lapse: not a refusal). Counted in Redis after each change, so it may lag a change by a moment',
    ),
  paused: z.literal(true).optional().describe('IN_LINE in a paused sale: nothing is decided until it resumes'),
  estimated_wait_seconds: z
    .number()
    .optional()
    .describe(
      "IN_LINE and not paused: about how long until it is decided: the show's requests ahead of it ÷ the show's measured decision rate, " +
        "or while the show's own requests do not move, its place ÷ the rate the queue drains at; absent while neither rate is known",
    ),
};

export const BookingAccepted = z.object({
  id: z.string(),
  status: z.literal('QUEUED'),
  phase: queuePhase.nullable().describe('Null for an Idempotency-Key replay of a request decided since'),
  position: z.number().nullable().describe('Null in the waiting room (the draw gives places) and for a replay of a decided request'),
  status_url: z.string(),
});

/** The 202's headers, documented in OpenAPI next to its body. */
export const BookingAcceptedHeaders = {
  Location: z.string().describe('The status URL to poll (the same as status_url)'),
  'Retry-After': z.string().regex(/^\d+$/).describe('Seconds to wait before the first poll; grows with the queue position'),
  'Preference-Applied': z.string().optional().describe('`wait=N` when the answer waited N seconds for a decision (`Prefer: wait=N`) that has not come yet'),
};

/** The headers of POST /booking's 200: the decision, when `Prefer: wait=N` waited for it. */
export const BookingDecidedHeaders = {
  'Content-Location': z.string().describe('The status URL: the body is what it answers now'),
  'Preference-Applied': z.string().describe('`wait=N`: the answer waited for the decision'),
};

export const BookingStatusView = z.object({
  id: z.string(),
  status: z.enum(BOOKING_STATUSES),
  ...queuedFields,
  hold_expires_at: z.string().optional(),
  seats: z.array(z.string()).optional(),
  reason: z.string().optional(),
  updated_at: z.string(),
  waitlist_position: z.number().optional().describe('While WAITLISTED: its place on the show\'s waiting list, 1 = next'),
});

export const BookingView = z.object({
  id: z.string(),
  show_id: z.string(),
  customer_email: z
    .string()
    .describe('Masked in public reads ("a***@example.com": anyone holding the booking id can read it); in full in admin reads'),
  status: z.enum(BOOKING_STATUSES),
  reason: z.string().nullable(),
  seat_count: z.number(),
  section: z.string().nullable(),
  requested_seats: z.array(z.string()).nullable(),
  seats: z.array(z.string()),
  total_cents: z
    .number()
    .nullable()
    .describe(
      'Sum of the prices of the seats this booking holds or held (kept after the hold ends, like `seats`); ' +
        '0 when it never got seats (FAILED with SOLD_OUT, SEATS_UNAVAILABLE, ...); null while QUEUED',
    ),
  ...queuedFields,
  hold_expires_at: z.string().nullable(),
  accepted_at: z.string(),
  decided_at: z.string().nullable(),
  confirmed_at: z.string().nullable(),
  updated_at: z.string(),
  from_waitlist: z
    .boolean()
    .describe('It joined the waiting list: WAITLISTED, it waits there; HELD, the hold is an offer from the list (WAITLIST_OFFER_SECONDS)'),
  waitlist_position: z.number().optional().describe('While WAITLISTED: its place on the show\'s waiting list, 1 = next'),
});

export const ConfirmBody = z.object({ payment: z.enum(['success', 'fail']) }).strict();

export const SeatsQuery = z.object({
  section: sectionName.optional().describe('Only the seats of this section (400 naming `section` if the show has none such)'),
});

const DECIDED_STATUSES = BOOKING_STATUSES.filter((status): status is DecidedStatus => status !== 'QUEUED');

export const AdminBookingQuery = z.object({
  ...pageQuery,
  show_id: z.uuid({ message: 'must be a UUID' }).optional(),
  email: z
    .email({ message: 'must be an email address' })
    .max(254)
    .transform((email) => email.toLowerCase())
    .optional()
    .describe('Exact address (case-insensitive)'),
  status: z
    .enum(DECIDED_STATUSES as [DecidedStatus, ...DecidedStatus[]], {
      message: `must be one of ${DECIDED_STATUSES.join(', ')} (queued requests live in the queue, not here)`,
    })
    .optional(),
});

export const AdminBookingList = z.object({ bookings: z.array(BookingView), next: NextLink });

export const ShowDeleted = z.object({ id: z.string(), deleted_seats: z.number(), deleted_bookings: z.number() });

export const ShowIdParams = z.object({ id: z.uuid({ message: 'must be a UUID' }).describe('The show') });

export const WaitlistQuery = z.object({ ...pageQuery });

export const WaitlistEntryView = z.object({
  booking_id: z.string(),
  position: z.number().describe('1 = the next entry an offer goes to (when the free seats fit it)'),
  customer_email: z.string().describe('In full (admin read)'),
  seat_count: z.number(),
  section: z.string().nullable().describe('The section it waits for; null: any'),
  waiting_since: z.string().describe('When it joined the list (its order)'),
});

export const WaitlistPage = z.object({
  show_id: z.string(),
  entries: z.array(WaitlistEntryView),
  next: NextLink,
});

export const WaitlistClosed = z.object({
  show_id: z.string(),
  closed_at: z.string().describe('When the list closed (the first close; closing again keeps it)'),
  failed: z.number().describe('Entries that were still waiting and are now FAILED SOLD_OUT'),
});

// ---- Webhooks (POST/GET /admin/webhooks, DELETE /admin/webhooks/:id, GET /admin/webhooks/:id/deliveries)

const webhookEventType = z.enum(BOOKING_EVENT_TYPES, { message: `must be one of ${BOOKING_EVENT_TYPES.join(', ')}` });

export const CreateWebhookBody = z
  .object({
    url: z
      .string({ message: 'must be an absolute http(s) URL' })
      .max(2_048, 'at most 2048 characters')
      .superRefine((url, ctx) => {
        const problem = urlProblem(url);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .describe('Where events are POSTed: http or https. In production, loopback, private and link-local targets are refused unless WEBHOOK_ALLOWED_HOSTS lists them'),
    events: z
      .array(webhookEventType)
      .min(1, 'must name at least one event type (leave it out for all)')
      .max(BOOKING_EVENT_TYPES.length)
      .refine((events) => new Set(events).size === events.length, 'must not repeat an event type')
      .optional()
      .describe(`Event types to receive; all of them when left out (${BOOKING_EVENT_TYPES.join(', ')})`),
  })
  .strict();

export const WebhookView = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(webhookEventType).describe('The event types this webhook receives'),
  created_at: z.string(),
});

export const WebhookCreated = WebhookView.extend({
  secret: z
    .string()
    .describe('The signing secret ("whsec_" + base64 of 32 random bytes), per the Standard Webhooks spec. Shown only in this answer: store it now'),
});

export const WebhookListQuery = z.object({ ...pageQuery });
export const WebhookList = z.object({ webhooks: z.array(WebhookView), next: NextLink });
export const WebhookDeleted = z.object({ id: z.string(), deleted: z.literal(true) });

export const DeliveryView = z.object({
  id: z.string(),
  event_id: z.string().describe('The event\'s webhook-id header ("msg_…"), the same on every attempt: receivers deduplicate on it'),
  type: webhookEventType,
  booking_id: z.string(),
  status: z.enum(DELIVERY_STATUSES).describe('PENDING (not yet answered 2xx; retried), DELIVERED, or FAILED (retries ran out)'),
  attempts: z.number().describe('Attempts made so far'),
  status_code: z.number().nullable().describe('HTTP status of the last attempt; null if it got no answer (timeout, refused connection) or none was made'),
  latency_ms: z.number().nullable().describe('How long the last attempt took'),
  error: z.string().nullable().describe('Why the last attempt failed; null after a 2xx'),
  last_attempt_at: z.string().nullable(),
  next_retry_at: z.string().nullable().describe('When the next attempt is due (PENDING only)'),
  delivered_at: z.string().nullable(),
  created_at: z.string(),
});
export const DeliveryList = z.object({ deliveries: z.array(DeliveryView), next: NextLink });

/** GET /shows/:id/draw: the waiting room's draw and what proves it (shared/booking/draw.ts). */
export const DrawView = z.object({
  seed_sha256: z.string().describe('The commitment every show view carried from the creation: lowercase hex SHA-256 of the seed'),
  seed: z.string().describe('The 32 seed bytes, 64 lowercase hex characters, revealed at the draw'),
  drawn_at: z.string(),
  entries: z.number().describe('Requests in the waiting room when it was drawn'),
  keys: z
    .array(z.string())
    .describe('Each entry\'s HMAC-SHA256(key = seed, message = booking id as lowercase UUID) in lowercase hex, in draw order (ascending): find yours at your place'),
});
