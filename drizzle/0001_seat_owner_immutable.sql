-- A taken seat belongs to its booking until it is released (booking_id back to NULL, status
-- AVAILABLE). The single booking_id column already means a seat points at one booking at a
-- time, and the CHECKs tie status, booking and expiry together; but nothing stopped one UPDATE
-- from repointing a HELD or BOOKED seat straight at another booking of the same show, taking it
-- from a live hold or a paid booking behind that booking's back. No code path does that (claims
-- only take AVAILABLE seats; expiry, cancel and failed payment set NULL), so the database can
-- refuse it outright. The WHEN clause keeps every legitimate write (NULL to a booking, a booking
-- to NULL, status changes that keep the booking) off the trigger function entirely.
CREATE FUNCTION seats_refuse_owner_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'seat % belongs to booking %: release it before booking % can take it', OLD.id, OLD.booking_id, NEW.booking_id
    USING ERRCODE = 'check_violation', CONSTRAINT = 'seats_owner_immutable', TABLE = 'seats';
END
$$;
--> statement-breakpoint
CREATE TRIGGER seats_owner_immutable
  BEFORE UPDATE OF booking_id ON seats
  FOR EACH ROW
  WHEN (OLD.booking_id IS NOT NULL AND NEW.booking_id IS NOT NULL AND OLD.booking_id <> NEW.booking_id)
  EXECUTE FUNCTION seats_refuse_owner_change();
