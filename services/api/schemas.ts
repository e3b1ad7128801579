import { z } from 'zod';
import type { Config } from '../../shared/config.js';
import { MAX_SEATS_PER_SHOW } from '../../shared/booking/layout.js';
import { BOOKING_STATUSES } from '../../shared/booking/statuses.js';

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

const startTime = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2026-12-01T20:00:00Z' });

const SectionInput = z
  .object({
    name: sectionName,
    rows: z.number().int().min(1).max(702),
    seats_per_row: z.number().int().min(1).max(10_000),
    price_cents: z.number().int().min(0).max(100_000_000),
  })
  .strict();

export const CreateShowBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    start_time: startTime,
    total_seats: z.number().int().min(1).max(MAX_SEATS_PER_SHOW).optional(),
    sections: z.array(SectionInput).min(1).max(50).optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if ((body.total_seats === undefined) === (body.sections === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['total_seats'], message: 'give either total_seats or sections, not both or neither' });
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
});

export const ShowDetail = ShowSummary.extend({
  seating: z.enum(['general', 'reserved']),
  created_at: z.string(),
  sections: z.array(SectionView),
});

export const SeatView = z.object({
  label: z.string(),
  section: z.string(),
  row: z.number(),
  number: z.number(),
  price_cents: z.number(),
  status: z.string(),
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
    })
    .strict()
    .superRefine((body, ctx) => {
      if ((body.seat_count === undefined) === (body.seats === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['seat_count'], message: 'give either seat_count or seats, not both or neither' });
      }
      if (body.seats && body.section !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['section'], message: 'section goes with seat_count, not with seats' });
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

export const BookingAccepted = z.object({
  id: z.string(),
  status: z.literal('QUEUED'),
  position: z.number().nullable(),
  status_url: z.string(),
});

export const BookingStatusView = z.object({
  id: z.string(),
  status: z.enum(BOOKING_STATUSES),
  position: z.number().optional(),
  hold_expires_at: z.string().optional(),
  seats: z.array(z.string()).optional(),
  reason: z.string().optional(),
  updated_at: z.string(),
});

export const BookingView = z.object({
  id: z.string(),
  show_id: z.string(),
  customer_email: z.string(),
  status: z.enum(BOOKING_STATUSES),
  reason: z.string().nullable(),
  seat_count: z.number(),
  section: z.string().nullable(),
  requested_seats: z.array(z.string()).nullable(),
  seats: z.array(z.string()),
  position: z.number().optional(),
  hold_expires_at: z.string().nullable(),
  accepted_at: z.string(),
  decided_at: z.string().nullable(),
  confirmed_at: z.string().nullable(),
  updated_at: z.string(),
});

export const ConfirmBody = z.object({ payment: z.enum(['success', 'fail']) }).strict();
