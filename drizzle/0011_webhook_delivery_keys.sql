-- Keys the admin lists page by (services/api/pagination.ts: a cursor is a millisecond instant
-- and a UUID): delivery ids become UUIDs, and the creation times of webhooks and deliveries are
-- kept to the millisecond, so a cursor names a row's position exactly. Deliveries are only ever
-- referred to by id through the API, so new random ids for existing rows lose nothing.
DROP INDEX "webhook_deliveries_webhook_idx";--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ALTER COLUMN "id" DROP IDENTITY;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ALTER COLUMN "id" SET DATA TYPE uuid USING gen_random_uuid();--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ALTER COLUMN "id" SET DEFAULT gen_random_uuid();--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ALTER COLUMN "created_at" SET DATA TYPE timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "webhooks" ALTER COLUMN "created_at" SET DATA TYPE timestamp (3) with time zone;--> statement-breakpoint
CREATE INDEX "webhook_deliveries_webhook_idx" ON "webhook_deliveries" USING btree ("webhook_id","created_at","id");--> statement-breakpoint
-- An event's data as json rather than jsonb: stored as written, so a receiver gets the booking's
-- fields in the order booking_event_data lists them, and cheaper to write on the booking path
-- (no conversion); it is only ever read back whole. booking_event_data builds json to match
-- (its return type changes, so it is dropped and created again; record_booking_events calls it
-- by name and needs no change).
ALTER TABLE "webhook_events" ALTER COLUMN "data" SET DATA TYPE json;--> statement-breakpoint
DROP FUNCTION booking_event_data(bookings);--> statement-breakpoint
CREATE FUNCTION booking_event_data(b bookings) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'id', b.id,
    'show_id', b.show_id,
    'status', b.status,
    'reason', b.failure_reason,
    'seat_count', b.seat_count,
    'section', b.requested_section,
    'requested_seats', b.requested_seats,
    'seats', b.seat_labels,
    'total_cents', b.total_cents,
    'customer_email', b.customer_email,
    'hold_expires_at', CASE WHEN b.status = 'HELD'
      THEN to_char(b.hold_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END,
    'updated_at', to_char(b.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;
