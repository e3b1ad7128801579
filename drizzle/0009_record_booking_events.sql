-- The outbox writer (docs/ARCHITECTURE.md, "The outbox"). Every booking change that a webhook
-- may hear about calls record_booking_events inside the change's own transaction: the worker's
-- decisions and expiry sweep through shared/webhooks/outbox.ts, settle_booking below directly.
-- One call writes a whole batch, in two INSERTs of one statement, and only for event types some
-- webhook subscribes to: with no webhook registered it writes nothing.

-- The booking as a webhook's `data` shows it. Timestamps as the API prints them (UTC, ms, "Z").
CREATE FUNCTION booking_event_data(b bookings) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', b.id,
    'show_id', b.show_id,
    'customer_email', b.customer_email,
    'status', b.status,
    'reason', b.failure_reason,
    'seat_count', b.seat_count,
    'section', b.requested_section,
    'requested_seats', to_jsonb(b.requested_seats),
    'seats', to_jsonb(b.seat_labels),
    'total_cents', b.total_cents,
    'hold_expires_at', CASE WHEN b.status = 'HELD'
      THEN to_char(b.hold_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END,
    'updated_at', to_char(b.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;
--> statement-breakpoint
-- p_types[i] happened to p_booking_ids[i]; the booking rows are read as this transaction left
-- them, so call it after the change. Events get ids in the order given. Returns the number of
-- events written.
CREATE FUNCTION record_booking_events(p_types text[], p_booking_ids uuid[]) RETURNS integer
LANGUAGE sql AS $$
  WITH subscribed AS (
    SELECT e.type, e.booking_id, e.ord
    FROM unnest(p_types, p_booking_ids) WITH ORDINALITY AS e(type, booking_id, ord)
    WHERE EXISTS (SELECT 1 FROM webhooks w WHERE e.type = ANY(w.events))
  ), written AS (
    INSERT INTO webhook_events (type, booking_id, data, occurred_at)
    SELECT s.type, b.id, booking_event_data(b), b.updated_at
    FROM subscribed s JOIN bookings b ON b.id = s.booking_id
    ORDER BY s.ord
    RETURNING id, type, booking_id
  ), fanned_out AS (
    INSERT INTO webhook_deliveries (webhook_id, event_id, booking_id)
    SELECT w.id, e.id, e.booking_id FROM written e JOIN webhooks w ON e.type = ANY(w.events)
    RETURNING 1
  )
  SELECT count(*)::int FROM written
$$;
--> statement-breakpoint
-- settle_booking as in 0004, recording its event (confirmed, cancelled, failed on a declined
-- payment, or expired when the hold had lapsed) before it returns: same transaction as the change.
CREATE OR REPLACE FUNCTION settle_booking(p_id uuid, p_action text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  settled_at timestamptz;
  current_status text;
  seat_count integer;
  held_until timestamptz;
  lapsed boolean;
  booked integer;
BEGIN
  SELECT status, cardinality(seat_ids), hold_expires_at
    INTO current_status, seat_count, held_until
    FROM bookings WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'not_found';
  END IF;
  -- Read the clock once the booking is locked: the lock may have been waited for, and now()
  -- would still say when the transaction began (a hold that lapsed during the wait would be
  -- confirmed).
  settled_at := clock_timestamp();
  lapsed := current_status = 'HELD' AND held_until <= settled_at;

  IF lapsed THEN
    UPDATE bookings SET status = 'EXPIRED', updated_at = settled_at WHERE id = p_id;
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      WHERE booking_id = p_id AND status = 'HELD';
    PERFORM record_booking_events(ARRAY['booking.expired'], ARRAY[p_id]);
    RETURN 'rejected';
  END IF;

  IF p_action IN ('confirm', 'payment_failed') AND current_status = 'CONFIRMED' THEN
    RETURN 'ok'; -- confirming twice answers the same
  END IF;
  IF current_status <> 'HELD' THEN
    RETURN 'rejected';
  END IF;

  IF p_action = 'confirm' THEN
    UPDATE seats SET status = 'BOOKED', hold_expires_at = NULL WHERE booking_id = p_id AND status = 'HELD';
    GET DIAGNOSTICS booked = ROW_COUNT;
    IF booked <> seat_count THEN
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
  ELSIF p_action = 'cancel' THEN
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      WHERE booking_id = p_id AND status = 'HELD';
    UPDATE bookings SET status = 'CANCELLED', updated_at = settled_at WHERE id = p_id;
    PERFORM record_booking_events(ARRAY['booking.cancelled'], ARRAY[p_id]);
  ELSE
    RAISE EXCEPTION 'unknown settle action %', p_action;
  END IF;
  RETURN 'ok';
END
$$;
