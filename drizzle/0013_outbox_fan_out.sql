-- The outbox's booking path writes one row per event (docs/ARCHITECTURE.md, "The outbox"):
-- record_booking_events no longer writes the deliveries; the relay fans each event out into its
-- deliveries when it picks the event up (shared/webhooks/relay.ts, fanOutEvents). Measured, the
-- delivery rows (a row and four index entries per booking, in the claim transaction) were most
-- of what a webhook cost the burst (bench/RESULTS.md, "Webhooks on the booking path").
ALTER TABLE "webhook_events" ADD COLUMN "fanned_out_at" timestamp with time zone;--> statement-breakpoint
-- Events written before this migration already have their deliveries.
UPDATE "webhook_events" SET "fanned_out_at" = "occurred_at";--> statement-breakpoint
CREATE INDEX "webhook_deliveries_event_idx" ON "webhook_deliveries" USING btree ("event_id");--> statement-breakpoint
CREATE INDEX "webhook_events_unfanned_idx" ON "webhook_events" USING btree ("id") WHERE "webhook_events"."fanned_out_at" IS NULL;--> statement-breakpoint
-- As in 0009, without the deliveries: p_types[i] happened to p_booking_ids[i]; the booking rows
-- are read as this transaction left them (call it after the change), each event's data is the
-- booking as it stands now, and events get ids in the order given. Only types some webhook
-- subscribes to are written. One INSERT for the whole batch. Returns the number written.
CREATE OR REPLACE FUNCTION record_booking_events(p_types text[], p_booking_ids uuid[]) RETURNS integer
LANGUAGE sql AS $$
  WITH written AS (
    INSERT INTO webhook_events (type, booking_id, data, occurred_at)
    SELECT e.type, b.id, booking_event_data(b), b.updated_at
    FROM unnest(p_types, p_booking_ids) WITH ORDINALITY AS e(type, booking_id, ord)
    JOIN bookings b ON b.id = e.booking_id
    WHERE EXISTS (SELECT 1 FROM webhooks w WHERE e.type = ANY(w.events))
    ORDER BY e.ord
    RETURNING 1
  )
  SELECT count(*)::int FROM written
$$;
