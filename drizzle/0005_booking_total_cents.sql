ALTER TABLE "bookings" ADD COLUMN "total_cents" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "bookings" ADD CONSTRAINT "bookings_total_cents_non_negative" CHECK ("bookings"."total_cents" >= 0);--> statement-breakpoint
-- Bookings decided before this column existed: price the seats they hold or held (seat prices
-- never change, and a booking keeps seat_ids after its hold ends).
UPDATE "bookings" b SET "total_cents" = (SELECT coalesce(sum(s.price_cents), 0) FROM "seats" s WHERE s.id = ANY(b.seat_ids))
  WHERE cardinality(b.seat_ids) > 0;
