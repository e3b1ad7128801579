ALTER TABLE "bookings" DROP CONSTRAINT "bookings_status_valid";--> statement-breakpoint
ALTER TABLE "bookings" DROP CONSTRAINT "bookings_confirmed_consistent";--> statement-breakpoint
ALTER TABLE "bookings" DROP CONSTRAINT "bookings_seats_match_count";--> statement-breakpoint
DROP INDEX "bookings_customer_live_idx";--> statement-breakpoint
ALTER TABLE "shows" ADD COLUMN "waitlist_offer_seconds" integer;--> statement-breakpoint
ALTER TABLE "shows" ADD COLUMN "waitlist_closed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "bookings" ADD COLUMN "waitlisted_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "bookings_waitlist_idx" ON "bookings" USING btree ("show_id","waitlisted_at","id") WHERE "bookings"."status" = 'WAITLISTED';--> statement-breakpoint
CREATE INDEX "bookings_customer_live_idx" ON "bookings" USING btree ("show_id","customer_email") WHERE "bookings"."status" IN ('HELD', 'CONFIRMED', 'WAITLISTED');--> statement-breakpoint
ALTER TABLE "shows" ADD CONSTRAINT "shows_waitlist_offer_seconds_range" CHECK ("shows"."waitlist_offer_seconds" BETWEEN 1 AND 86400);--> statement-breakpoint
ALTER TABLE "bookings" ADD CONSTRAINT "bookings_waitlisted_no_seats" CHECK ("bookings"."status" <> 'WAITLISTED' OR cardinality("bookings"."seat_ids") = 0);--> statement-breakpoint
ALTER TABLE "bookings" ADD CONSTRAINT "bookings_waitlisted_since" CHECK ("bookings"."status" <> 'WAITLISTED' OR "bookings"."waitlisted_at" IS NOT NULL);--> statement-breakpoint
ALTER TABLE "bookings" ADD CONSTRAINT "bookings_status_valid" CHECK ("bookings"."status" IN ('HELD', 'CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED', 'WAITLISTED', 'REFUNDED'));--> statement-breakpoint
ALTER TABLE "bookings" ADD CONSTRAINT "bookings_confirmed_consistent" CHECK (("bookings"."status" IN ('CONFIRMED', 'REFUNDED')) = ("bookings"."confirmed_at" IS NOT NULL));--> statement-breakpoint
ALTER TABLE "bookings" ADD CONSTRAINT "bookings_seats_match_count" CHECK ("bookings"."status" NOT IN ('HELD', 'CONFIRMED', 'EXPIRED', 'CANCELLED', 'REFUNDED') OR cardinality("bookings"."seat_ids") = "bookings"."seat_count" OR ("bookings"."status" = 'CANCELLED' AND cardinality("bookings"."seat_ids") = 0));--> statement-breakpoint
-- The waiting list's lock: every transaction that frees seats of a show, joins its waiting list
-- or offers seats to it takes this transaction-scoped advisory lock, so "seats freed" and "an
-- entry waits" are never decided by two transactions that cannot see each other (the second
-- one to take the lock sees the first one committed). One definition of the key, used by
-- settle_booking below and by shared/booking/waitlist.ts.
CREATE FUNCTION waitlist_lock_key(p_show_id uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('waitlist|' || p_show_id::text, 0) $$;
--> statement-breakpoint
-- A webhook's `data` (0011's json version) tells an offer from an ordinary hold:
-- from_waitlist, as the API's booking view does. Same return type, so replaced in place.
CREATE OR REPLACE FUNCTION booking_event_data(b bookings) RETURNS json
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
    'updated_at', to_char(b.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'from_waitlist', b.waitlisted_at IS NOT NULL)
$$;
--> statement-breakpoint
-- settle_booking (0009: 0004 with its outbox events) gains the waiting list and refunds:
-- - 'cancel' of a WAITLISTED booking cancels it (it leaves the list; it holds no seat);
-- - 'refund' of a CONFIRMED booking makes it REFUNDED and frees its seats (refunding twice
--   answers the same);
-- - whenever it frees seats (cancel, failed payment, refund, a lapsed hold found on the spot)
--   it takes the waiting list's lock. If the show then has entries waiting, the freed seats
--   must be offered to them before any new request can see them, in this same transaction:
--   called with p_offers_follow = false (the one round trip a settle costs when no list
--   exists) it raises SQLSTATE TRW01 instead, rolling everything back, and the caller
--   (shared/booking/settle.ts) runs it again with p_offers_follow = true inside a transaction
--   that offers the seats (shared/booking/waitlist.ts) before it commits.
-- Each change records its outbox event (record_booking_events, 0009) before returning, as in
-- 0009: booking.confirmed, .failed, .cancelled, .expired, and now .refunded.
DROP FUNCTION settle_booking(uuid, text);
--> statement-breakpoint
CREATE FUNCTION settle_booking(p_id uuid, p_action text, p_offers_follow boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  settled_at timestamptz;
  current_status text;
  booking_show uuid;
  seat_count integer;
  held_until timestamptz;
  changed integer;
  freed boolean := false;
  verdict text := 'ok';
BEGIN
  SELECT status, show_id, cardinality(seat_ids), hold_expires_at
    INTO current_status, booking_show, seat_count, held_until
    FROM bookings WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'not_found';
  END IF;
  -- Read the clock once the booking is locked: the lock may have been waited for.
  settled_at := clock_timestamp();

  IF current_status = 'HELD' AND held_until <= settled_at THEN
    UPDATE bookings SET status = 'EXPIRED', updated_at = settled_at WHERE id = p_id;
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      WHERE booking_id = p_id AND status = 'HELD';
    PERFORM record_booking_events(ARRAY['booking.expired'], ARRAY[p_id]);
    freed := true;
    verdict := 'rejected';
  ELSIF p_action IN ('confirm', 'payment_failed') AND current_status = 'CONFIRMED' THEN
    RETURN 'ok'; -- confirming twice answers the same
  ELSIF p_action = 'refund' AND current_status = 'REFUNDED' THEN
    RETURN 'ok'; -- refunding twice answers the same
  ELSIF p_action = 'cancel' AND current_status = 'WAITLISTED' THEN
    UPDATE bookings SET status = 'CANCELLED', updated_at = settled_at WHERE id = p_id;
    PERFORM record_booking_events(ARRAY['booking.cancelled'], ARRAY[p_id]);
    RETURN 'ok'; -- it held no seat: nothing to offer
  ELSIF p_action = 'refund' THEN
    IF current_status <> 'CONFIRMED' THEN
      RETURN 'rejected';
    END IF;
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      WHERE booking_id = p_id AND status = 'BOOKED';
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed <> seat_count THEN
      RAISE EXCEPTION 'booking % could not be refunded consistently', p_id;
    END IF;
    UPDATE bookings SET status = 'REFUNDED', updated_at = settled_at WHERE id = p_id;
    PERFORM record_booking_events(ARRAY['booking.refunded'], ARRAY[p_id]);
    freed := true;
  ELSIF current_status <> 'HELD' THEN
    RETURN 'rejected';
  ELSIF p_action = 'confirm' THEN
    UPDATE seats SET status = 'BOOKED', hold_expires_at = NULL WHERE booking_id = p_id AND status = 'HELD';
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed <> seat_count THEN
      -- Only possible if data were corrupted: refuse rather than confirm without every seat.
      RAISE EXCEPTION 'booking % could not be settled consistently', p_id;
    END IF;
    UPDATE bookings SET status = 'CONFIRMED', confirmed_at = settled_at, updated_at = settled_at WHERE id = p_id;
    PERFORM record_booking_events(ARRAY['booking.confirmed'], ARRAY[p_id]);
  ELSIF p_action = 'payment_failed' THEN
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      WHERE booking_id = p_id AND status = 'HELD';
    UPDATE bookings SET status = 'FAILED', failure_reason = 'PAYMENT_FAILED', updated_at = settled_at WHERE id = p_id;
    PERFORM record_booking_events(ARRAY['booking.failed'], ARRAY[p_id]);
    freed := true;
  ELSIF p_action = 'cancel' THEN
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      WHERE booking_id = p_id AND status = 'HELD';
    UPDATE bookings SET status = 'CANCELLED', updated_at = settled_at WHERE id = p_id;
    PERFORM record_booking_events(ARRAY['booking.cancelled'], ARRAY[p_id]);
    freed := true;
  ELSE
    RAISE EXCEPTION 'unknown settle action %', p_action;
  END IF;

  IF freed THEN
    PERFORM pg_advisory_xact_lock(waitlist_lock_key(booking_show));
    IF NOT p_offers_follow AND EXISTS (SELECT 1 FROM bookings WHERE show_id = booking_show AND status = 'WAITLISTED') THEN
      RAISE EXCEPTION 'seats of show % freed while its waiting list has entries: offers must follow', booking_show
        USING ERRCODE = 'TRW01';
    END IF;
  END IF;
  RETURN verdict;
END
$$;
