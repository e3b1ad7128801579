import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, json, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { BOOKING_EVENT_TYPES, DELIVERY_STATUSES } from '../../webhooks/events.js';
import { literalList, timestamptz } from './columns.js';

/**
 * Creation time in milliseconds, the precision of the list cursors (services/api/pagination.ts)
 * that page by it: a cursor then names a row's position exactly.
 */
const createdAtMs = () => timestamp('created_at', { withTimezone: true, mode: 'date', precision: 3 }).notNull().defaultNow();

/**
 * Webhooks and their transactional outbox (docs/ARCHITECTURE.md, "The outbox"). An event row is
 * written by the same transaction as the booking change it reports (record_booking_events,
 * drizzle/0014_record_events_early_exit.sql); the worker's relay later fans it out into one delivery row
 * per webhook that subscribes to it, and sends the deliveries. A rolled-back change leaves no
 * event, and a committed one cannot lose it.
 */
export const webhooks = pgTable(
  'webhooks',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    url: text('url').notNull(),
    events: text('events', { enum: BOOKING_EVENT_TYPES }).array().notNull(),
    // The signing key as the Standard Webhooks spec shows it ("whsec_" + base64). Kept in clear:
    // an HMAC needs the key itself; it is shown once, at creation, and never read back.
    secret: text('secret').notNull(),
    createdAt: createdAtMs(),
  },
  (table) => [
    check(
      'webhooks_events_valid',
      sql`cardinality(${table.events}) >= 1 AND ${table.events} <@ ARRAY[${literalList(BOOKING_EVENT_TYPES)}]::text[]`,
    ),
  ],
);

/** The outbox: one row per booking change some webhook subscribes to. */
export const webhookEvents = pgTable(
  'webhook_events',
  {
    // Also the order of events: two changes of one booking are serialised by its row lock, so
    // the later one always gets the larger id.
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    // The Standard Webhooks `webhook-id` ("msg_" + this): the same on every retry of the event.
    messageId: uuid('message_id').notNull().defaultRandom(),
    type: text('type', { enum: BOOKING_EVENT_TYPES }).notNull(),
    // No foreign key: deleting a show deletes its bookings, the history of what was sent stays.
    bookingId: uuid('booking_id').notNull(),
    // The booking as it stood when the change committed: the body's `data`. json, not jsonb:
    // kept as written (fields in the order booking_event_data gives them, cheaper to write on
    // the booking path), and only ever read back whole.
    data: json('data').notNull(),
    occurredAt: timestamptz('occurred_at').notNull(),
    // When the relay wrote the event's deliveries (shared/webhooks/relay.ts, fanOutEvents); null
    // while it has not. Not done by the booking's transaction: one row per event is all the
    // booking path pays.
    fannedOutAt: timestamptz('fanned_out_at'),
  },
  (table) => [
    check('webhook_events_type_valid', sql`${table.type} IN (${literalList(BOOKING_EVENT_TYPES)})`),
    // The relay's fan-out scan, oldest first. Partial: it holds only the few events a burst has
    // written and the relay not yet fanned out, so the booking path's insert into it is cheap
    // and fanned-out history costs the scan nothing.
    index('webhook_events_unfanned_idx')
      .on(table.id)
      .where(sql`${table.fannedOutAt} IS NULL`),
  ],
);

/** One event for one webhook: what the relay sends, retries and reports. */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    webhookId: uuid('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    eventId: bigint('event_id', { mode: 'number' })
      .notNull()
      .references(() => webhookEvents.id, { onDelete: 'cascade' }),
    // Copied from the event, so "is an earlier event of this booking still pending for this
    // webhook" (order per booking) is answered by one index.
    bookingId: uuid('booking_id').notNull(),
    status: text('status', { enum: DELIVERY_STATUSES }).notNull().default('PENDING'),
    attempts: integer('attempts').notNull().default(0),
    // When the relay may send it next; while an attempt is in flight, the end of its lease (a
    // crashed attempt is found again once the lease is over).
    nextAttemptAt: timestamptz('next_attempt_at').notNull().defaultNow(),
    lastAttemptAt: timestamptz('last_attempt_at'),
    lastStatusCode: integer('last_status_code'),
    lastLatencyMs: integer('last_latency_ms'),
    lastError: text('last_error'),
    deliveredAt: timestamptz('delivered_at'),
    createdAt: createdAtMs(),
  },
  (table) => [
    check('webhook_deliveries_status_valid', sql`${table.status} IN (${literalList(DELIVERY_STATUSES)})`),
    check('webhook_deliveries_delivered_consistent', sql`(${table.status} = 'DELIVERED') = (${table.deliveredAt} IS NOT NULL)`),
    // The relay's scan: pending deliveries that are due, soonest first. Partial, so delivered
    // history costs it nothing.
    index('webhook_deliveries_due_idx')
      .on(table.nextAttemptAt)
      .where(sql`${table.status} = 'PENDING'`),
    // Order per booking: a delivery waits while an earlier event of its booking is pending.
    index('webhook_deliveries_chain_idx')
      .on(table.webhookId, table.bookingId, table.eventId)
      .where(sql`${table.status} = 'PENDING'`),
    // GET /admin/webhooks/:id/deliveries, newest first; also the cascade of a webhook's delete.
    index('webhook_deliveries_webhook_idx').on(table.webhookId, table.createdAt, table.id),
    // Pruning (shared/webhooks/prune.ts): "is a delivery of this event still pending", and the
    // cascade that deletes a pruned event's deliveries.
    index('webhook_deliveries_event_idx').on(table.eventId),
  ],
);

export type Webhook = typeof webhooks.$inferSelect;
export type WebhookDelivery = typeof webhookDeliveries.$inferSelect;
