-- Settling a hold (confirm, failed payment, cancel) in one round trip. The API used to run it
-- as a transaction of six statements from Node: under a burst its event loop is busy, so the
-- booking and seat row locks stayed held between round trips while workers' claims queued
-- behind them. The same steps as one function call hold the locks only while Postgres runs
-- them. Order of locks as before: the booking row first, then its seats, so a settle
-- serialises with the expiry sweep and with a second settle of the same booking.
--
-- p_action: 'confirm' | 'payment_failed' | 'cancel'. Returns 'ok', 'rejected' (the booking's
-- status does not allow the action; a lapsed hold is expired on the spot and rejected) or
-- 'not_found'.
CREATE FUNCTION settle_booking(p_id uuid, p_action text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  current_status text;
  seat_count integer;
  lapsed boolean;
  booked integer;
BEGIN
  SELECT status, cardinality(seat_ids), (status = 'HELD' AND hold_expires_at <= now())
    INTO current_status, seat_count, lapsed
    FROM bookings WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'not_found';
  END IF;

  IF lapsed THEN
    UPDATE bookings SET status = 'EXPIRED', updated_at = now() WHERE id = p_id;
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
    UPDATE bookings SET status = 'CONFIRMED', confirmed_at = now(), updated_at = now() WHERE id = p_id;
  ELSIF p_action = 'payment_failed' THEN
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      WHERE booking_id = p_id AND status = 'HELD';
    UPDATE bookings SET status = 'FAILED', failure_reason = 'PAYMENT_FAILED', updated_at = now() WHERE id = p_id;
  ELSIF p_action = 'cancel' THEN
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      WHERE booking_id = p_id AND status = 'HELD';
    UPDATE bookings SET status = 'CANCELLED', updated_at = now() WHERE id = p_id;
  ELSE
    RAISE EXCEPTION 'unknown settle action %', p_action;
  END IF;
  RETURN 'ok';
END
$$;
