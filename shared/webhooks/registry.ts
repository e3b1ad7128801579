import { randomBytes } from 'node:crypto';
import { and, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { webhookDeliveries, webhookEvents, webhooks, type Webhook } from '../db/schema/index.js';
import { pageOf, type Page, type Position } from '../booking/page.js';
import { BOOKING_EVENT_TYPES, type BookingEventType, type DeliveryStatus } from './events.js';

/** Registering webhooks, listing them and what was sent to them. */

/**
 * A signing secret as the Standard Webhooks spec shows it: "whsec_" + base64 of random bytes
 * (32, above the spec's 24-byte minimum).
 */
export const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

export async function createWebhook(db: Executor, input: { url: string; events?: readonly BookingEventType[] | undefined }): Promise<Webhook> {
  const events = input.events ? BOOKING_EVENT_TYPES.filter((type) => input.events!.includes(type)) : [...BOOKING_EVENT_TYPES];
  const [created] = await db.insert(webhooks).values({ url: input.url, events, secret: newSecret() }).returning();
  return created!;
}

/** Webhooks newest first, a page at a time. */
export async function listWebhooks(db: Executor, page: { limit: number; after?: Position | null }): Promise<Page<Webhook>> {
  const rows = await db
    .select()
    .from(webhooks)
    .where(page.after ? sql`(${webhooks.createdAt}, ${webhooks.id}) < (${page.after.at.toISOString()}::timestamptz, ${page.after.id}::uuid)` : undefined)
    .orderBy(desc(webhooks.createdAt), desc(webhooks.id))
    .limit(page.limit + 1);
  return pageOf(rows, page.limit, (row) => ({ at: row.createdAt, id: row.id }));
}

export async function getWebhook(db: Executor, id: string): Promise<Webhook | null> {
  const [row] = await db.select().from(webhooks).where(eq(webhooks.id, id));
  return row ?? null;
}

/** Deletes the webhook and its deliveries (pending ones are never sent). False if there was none. */
export async function deleteWebhook(db: Executor, id: string): Promise<boolean> {
  const deleted = await db.delete(webhooks).where(eq(webhooks.id, id)).returning({ id: webhooks.id });
  return deleted.length > 0;
}

export type DeliveryRecord = {
  id: string;
  messageId: string;
  type: BookingEventType;
  bookingId: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastLatencyMs: number | null;
  lastError: string | null;
  lastAttemptAt: Date | null;
  nextAttemptAt: Date;
  deliveredAt: Date | null;
  createdAt: Date;
};

/** A webhook's deliveries, newest first, a page at a time. */
export async function listDeliveries(db: Executor, webhookId: string, page: { limit: number; after?: Position | null }): Promise<Page<DeliveryRecord>> {
  const conditions: SQL[] = [eq(webhookDeliveries.webhookId, webhookId)];
  if (page.after) {
    conditions.push(
      sql`(${webhookDeliveries.createdAt}, ${webhookDeliveries.id}) < (${page.after.at.toISOString()}::timestamptz, ${page.after.id}::uuid)`,
    );
  }
  const rows = await db
    .select({
      id: webhookDeliveries.id,
      messageId: webhookEvents.messageId,
      type: webhookEvents.type,
      bookingId: webhookDeliveries.bookingId,
      status: webhookDeliveries.status,
      attempts: webhookDeliveries.attempts,
      lastStatusCode: webhookDeliveries.lastStatusCode,
      lastLatencyMs: webhookDeliveries.lastLatencyMs,
      lastError: webhookDeliveries.lastError,
      lastAttemptAt: webhookDeliveries.lastAttemptAt,
      nextAttemptAt: webhookDeliveries.nextAttemptAt,
      deliveredAt: webhookDeliveries.deliveredAt,
      createdAt: webhookDeliveries.createdAt,
    })
    .from(webhookDeliveries)
    .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
    .where(and(...conditions))
    .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
    .limit(page.limit + 1);
  return pageOf(rows, page.limit, (row) => ({ at: row.createdAt, id: row.id }));
}
