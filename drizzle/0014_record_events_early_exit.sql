-- record_booking_events, as in 0013, but in PL/pgSQL: every claim transaction calls it, and
-- the SQL function's INSERT was planned again on every call (about 0.2 ms alone on this
-- machine, 0.9 ms per call under a burst: bench/RESULTS.md, session 6). PL/pgSQL keeps its
-- statements' plans for the session, and a sale with no webhook subscribed to these event types
-- (most) returns before the INSERT. Same arguments, same result, same events written.
CREATE OR REPLACE FUNCTION record_booking_events(p_types text[], p_booking_ids uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  written integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.events && p_types) THEN
    RETURN 0;
  END IF;
  INSERT INTO webhook_events (type, booking_id, data, occurred_at)
  SELECT e.type, b.id, booking_event_data(b), b.updated_at
  FROM unnest(p_types, p_booking_ids) WITH ORDINALITY AS e(type, booking_id, ord)
  JOIN bookings b ON b.id = e.booking_id
  WHERE EXISTS (SELECT 1 FROM webhooks w WHERE e.type = ANY(w.events))
  ORDER BY e.ord;
  GET DIAGNOSTICS written = ROW_COUNT;
  RETURN written;
END
$$;
