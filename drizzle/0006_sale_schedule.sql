ALTER TABLE "shows" ADD COLUMN "waiting_room_opens_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "shows" ADD COLUMN "sales_open_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "shows" ADD COLUMN "sales_close_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "shows" ADD COLUMN "hold_seconds" integer;--> statement-breakpoint
ALTER TABLE "shows" ADD COLUMN "max_seats_per_customer" integer;--> statement-breakpoint
ALTER TABLE "shows" ADD COLUMN "paused_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "shows" ADD COLUMN "draw_seed" "bytea";--> statement-breakpoint
-- Shows created before the schedule existed were on sale from their creation until they
-- started (as shared/booking/sale-schedule.ts defaults a new show: a show created after its
-- start opens a second before it, so the order CHECK holds). Their seed: two v4 UUIDs
-- (gen_random_uuid, 244 random bits from the strong generator) hashed to 32 bytes; new shows get
-- 32 bytes from node's crypto.randomBytes.
UPDATE "shows" SET
  "sales_close_at" = "start_time",
  "sales_open_at" = least("created_at", "start_time" - interval '1 second'),
  "waiting_room_opens_at" = least("created_at", "start_time" - interval '1 second'),
  "draw_seed" = sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8'));--> statement-breakpoint
ALTER TABLE "shows" ALTER COLUMN "waiting_room_opens_at" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "shows" ALTER COLUMN "sales_open_at" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "shows" ALTER COLUMN "sales_close_at" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "shows" ALTER COLUMN "draw_seed" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "shows" ADD COLUMN "seed_sha256" text GENERATED ALWAYS AS (encode(sha256(draw_seed), 'hex')) STORED NOT NULL;--> statement-breakpoint
ALTER TABLE "shows" ADD CONSTRAINT "shows_sale_schedule_order" CHECK ("shows"."waiting_room_opens_at" <= "shows"."sales_open_at" AND "shows"."sales_open_at" < "shows"."sales_close_at");--> statement-breakpoint
ALTER TABLE "shows" ADD CONSTRAINT "shows_hold_seconds_range" CHECK ("shows"."hold_seconds" BETWEEN 1 AND 86400);--> statement-breakpoint
ALTER TABLE "shows" ADD CONSTRAINT "shows_max_seats_per_customer_range" CHECK ("shows"."max_seats_per_customer" BETWEEN 1 AND 1000);--> statement-breakpoint
ALTER TABLE "shows" ADD CONSTRAINT "shows_draw_seed_length" CHECK (octet_length("shows"."draw_seed") = 32);
