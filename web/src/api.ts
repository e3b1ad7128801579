import type { z } from 'zod';
import type * as Schemas from '../../services/api/schemas.js';

/**
 * The pages' one client of the API: same origin, JSON, and every failure turned into an
 * ApiError whose `plain` says what happened in words a buyer understands. The types come
 * from the API's own zod schemas (type-only imports: nothing of zod reaches the bundle), so
 * the page and the API cannot drift apart unnoticed: `npm run typecheck` checks both.
 */

export type ShowSummary = z.infer<typeof Schemas.ShowSummary>;
export type SalesState = ShowSummary['sales_state'];
export type Section = z.infer<typeof Schemas.SectionView>;
export type ShowDetail = z.infer<typeof Schemas.ShowDetail>;
export type Seat = z.infer<typeof Schemas.SeatView>;
export type BookingRequest = z.input<ReturnType<typeof Schemas.bookingBody>> & { waitlist?: boolean };
export type BookingAccepted = z.infer<typeof Schemas.BookingAccepted>;
export type BookingView = z.infer<typeof Schemas.BookingView>;
/** Where a booking stands; the fields other issues are still adding are optional until the API sends them. */
export type BookingStatus = Omit<z.infer<typeof Schemas.BookingStatusView>, 'status'> & {
  status: z.infer<typeof Schemas.BookingStatusView>['status'] | 'WAITLISTED' | 'REFUNDED';
} & Partial<{
    seats_ahead: number;
    estimated_wait_seconds: number;
    outlook: 'GOOD' | 'UNLIKELY';
    waitlist_position: number;
  }>;
type ErrorBody = z.infer<typeof Schemas.ErrorBody>;

/**
 * A show with the counts of an `availability` event of its stream (GET /shows/:id/events:
 * `{ show_id, available_seats, sections: [{ name, available_seats, held_seats, booked_seats }],
 * sales_state, in_line }`); the show's name, prices and sizes stay as read.
 */
export function withAvailability(show: ShowDetail, data: unknown): ShowDetail {
  const event = (data ?? {}) as Partial<Pick<ShowDetail, 'available_seats' | 'sales_state' | 'in_line'>> & { sections?: Array<Partial<Section>> };
  const sections = show.sections.map((section) => ({ ...section, ...event.sections?.find((changed) => changed.name === section.name) }));
  return {
    ...show,
    ...(typeof event.available_seats === 'number' ? { available_seats: event.available_seats } : {}),
    ...(event.sales_state ? { sales_state: event.sales_state } : {}),
    ...(event.in_line !== undefined ? { in_line: event.in_line } : {}),
    sections,
  };
}

/** Statuses after which nothing changes any more. */
export const FINAL_STATUSES = new Set(['CONFIRMED', 'FAILED', 'CANCELLED', 'EXPIRED', 'REFUNDED']);

/** API field names as a person reads them on the page. */
const FIELD_NAMES: Record<string, string> = {
  customer_email: 'Email',
  seat_count: 'Seats',
  section: 'Section',
  seats: 'Seats picked on the map',
  show_id: 'Show',
  name: 'Name',
  start_time: 'Start time',
  total_seats: 'Seats',
  sections: 'Sections',
  sales_open_at: 'Sales open',
  waiting_room_opens_at: 'Waiting room opens',
  sales_close_at: 'Sales close',
  hold_seconds: 'Hold seconds',
  max_seats_per_customer: 'Max seats per customer',
};

const fieldName = (field: string) => {
  const [head = field, ...rest] = field.split(/[.[]/);
  const named = FIELD_NAMES[head] ?? head;
  return rest.length > 0 ? `${named} (${field.slice(head.length)})` : named;
};

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    /** HTTP status; 0 when the server could not be reached at all. */
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Array<{ field: string; problem: string }> = [],
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  /** A sentence for the page. */
  get plain(): string {
    const wait = this.retryAfterSeconds ? ` Try again in ${this.retryAfterSeconds} s.` : ' Try again in a moment.';
    switch (this.code) {
      case 'NETWORK':
        return 'Could not reach Ticket Rush. Check your connection, then try again: pressing Book again is safe, it cannot book twice.';
      case 'VALIDATION_ERROR':
        return this.details.length > 0
          ? `Please check: ${this.details.map((detail) => `${fieldName(detail.field)} ${detail.problem}`).join('; ')}.`
          : this.message;
      case 'RATE_LIMITED':
        return `Too many requests from your network.${wait}`;
      case 'OVERLOADED':
      case 'QUEUE_FULL':
      case 'SERVICE_UNAVAILABLE':
        return `Ticket Rush is very busy right now.${wait} Pressing Book again is safe: it cannot book twice.`;
      case 'SALE_CLOSED':
        return 'Sales for this show have closed.';
      case 'SALE_NOT_OPEN':
        return 'The waiting room for this show is not open yet.';
      case 'ALREADY_IN_LINE':
        return 'You are already in line for this show with this email.';
      case 'SHOW_NOT_FOUND':
        return 'This show no longer exists.';
      case 'HOLD_EXPIRED':
        return 'Your hold ran out before payment, so the seats were released.';
      case 'BOOKING_QUEUED':
        return 'Your request is still in line: you can pay or cancel once it is decided.';
      case 'IDEMPOTENCY_KEY_REUSED':
        return 'This retry does not match the request it repeats. Check the form, then press Book again.';
      case 'UNAUTHORIZED':
        return 'The admin token is missing or wrong.';
      case 'INTERNAL':
        return 'Something went wrong on our side. Try again in a moment.';
      default:
        return this.message;
    }
  }
}

export type Answer<T> = { status: number; body: T; headers: Headers };

export async function api<T>(
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, { method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) });
  } catch {
    throw new ApiError(0, 'NETWORK', 'network error');
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // A proxy's HTML error page: keep the status, say it plainly below.
  }
  if (!response.ok) {
    const retryAfter = Number(response.headers.get('retry-after'));
    const error = (body as ErrorBody | null)?.error;
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? `The server answered ${response.status} ${response.statusText}`.trim(),
      error?.details ?? [],
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
    );
  }
  return { status: response.status, body: body as T, headers: response.headers };
}

/**
 * What this API offers beyond the basics, read once from its OpenAPI document, so the page
 * uses live streams and newer routes where the API has them without asking for a route that
 * is not there (each 404 would be a console error and a wasted round trip).
 */
export type Capabilities = { bookingEvents: boolean; showEvents: boolean; pause: boolean; waitlist: boolean; schedule: boolean };
const NONE: Capabilities = { bookingEvents: false, showEvents: false, pause: false, waitlist: false, schedule: false };

type OpenApiDocument = {
  paths?: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> } }>>;
};

let capabilities: Promise<Capabilities> | undefined;
export function apiCapabilities(): Promise<Capabilities> {
  capabilities ??= api<OpenApiDocument>('GET', '/docs/json').then(
    ({ body }) => {
      const paths = body.paths ?? {};
      const bodyFields = (path: string, method: string) => Object.keys(paths[path]?.[method]?.requestBody?.content?.['application/json']?.schema?.properties ?? {});
      return {
        bookingEvents: Boolean(paths['/booking/{id}/events']?.get),
        showEvents: Boolean(paths['/shows/{id}/events']?.get),
        pause: Boolean(paths['/admin/shows/{id}/pause']?.post),
        waitlist: bodyFields('/booking', 'post').includes('waitlist'),
        schedule: bodyFields('/admin/shows', 'post').includes('sales_open_at'),
      };
    },
    () => NONE,
  );
  return capabilities;
}
