-- settle_booking (0003) read the time with now(), which is frozen when the transaction
-- begins. A settle that waited on the booking's lock (a sweep or a claim holding it) could then
-- confirm a hold that lapsed during the wait, and stamp times from before it. Same function,
-- reading the clock after the lock.
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
  ELSIF p_action = 'payment_failed' THEN
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      WHERE booking_id = p_id AND status = 'HELD';
    UPDATE bookings SET status = 'FAILED', failure_reason = 'PAYMENT_FAILED', updated_at = settled_at WHERE id = p_id;
  ELSIF p_action = 'cancel' THEN
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      WHERE booking_id = p_id AND status = 'HELD';
    UPDATE bookings SET status = 'CANCELLED', updated_at = settled_at WHERE id = p_id;
  ELSE
    RAISE EXCEPTION 'unknown settle action %', p_action;
  END IF;
  RETURN 'ok';
END
$$;
