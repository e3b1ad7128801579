CREATE TABLE "show_sections" (
	"show_id" uuid NOT NULL,
	"rank" smallint NOT NULL,
	"name" text NOT NULL,
	"rows" integer NOT NULL,
	"seats_per_row" integer NOT NULL,
	"price_cents" integer NOT NULL,
	CONSTRAINT "show_sections_show_id_rank_pk" PRIMARY KEY("show_id","rank"),
	CONSTRAINT "show_sections_name_unique" UNIQUE("show_id","name"),
	CONSTRAINT "show_sections_sizes_positive" CHECK ("show_sections"."rows" > 0 AND "show_sections"."seats_per_row" > 0),
	CONSTRAINT "show_sections_price_non_negative" CHECK ("show_sections"."price_cents" >= 0)
);
--> statement-breakpoint
CREATE TABLE "shows" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"start_time" timestamp with time zone NOT NULL,
	"total_seats" integer NOT NULL,
	"seating" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "shows_total_seats_range" CHECK ("shows"."total_seats" BETWEEN 1 AND 100000),
	CONSTRAINT "shows_seating_valid" CHECK ("shows"."seating" IN ('general', 'reserved'))
);
--> statement-breakpoint
CREATE TABLE "seats" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "seats_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"show_id" uuid NOT NULL,
	"label" text NOT NULL,
	"section" text NOT NULL,
	"section_rank" smallint NOT NULL,
	"row" smallint NOT NULL,
	"number" integer NOT NULL,
	"price_cents" integer NOT NULL,
	"status" text DEFAULT 'AVAILABLE' NOT NULL,
	"booking_id" uuid,
	"hold_expires_at" timestamp with time zone,
	CONSTRAINT "seats_label_unique" UNIQUE("show_id","label"),
	CONSTRAINT "seats_position_unique" UNIQUE("show_id","section_rank","row","number"),
	CONSTRAINT "seats_status_valid" CHECK ("seats"."status" IN ('AVAILABLE', 'HELD', 'BOOKED')),
	CONSTRAINT "seats_taken_iff_booking" CHECK (("seats"."status" = 'AVAILABLE') = ("seats"."booking_id" IS NULL)),
	CONSTRAINT "seats_held_iff_expiry" CHECK (("seats"."status" = 'HELD') = ("seats"."hold_expires_at" IS NOT NULL)),
	CONSTRAINT "seats_price_non_negative" CHECK ("seats"."price_cents" >= 0)
);
--> statement-breakpoint
CREATE TABLE "bookings" (
	"id" uuid PRIMARY KEY NOT NULL,
	"show_id" uuid NOT NULL,
	"customer_email" text NOT NULL,
	"seat_count" integer NOT NULL,
	"requested_section" text,
	"requested_seats" text[],
	"status" text NOT NULL,
	"failure_reason" text,
	"hold_expires_at" timestamp with time zone,
	"idempotency_key" text,
	"accepted_at" timestamp with time zone NOT NULL,
	"decided_at" timestamp with time zone NOT NULL,
	"confirmed_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seat_ids" integer[] DEFAULT '{}' NOT NULL,
	"seat_labels" text[] DEFAULT '{}' NOT NULL,
	CONSTRAINT "bookings_id_show_unique" UNIQUE("id","show_id"),
	CONSTRAINT "bookings_status_valid" CHECK ("bookings"."status" IN ('HELD', 'CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED')),
	CONSTRAINT "bookings_seat_count_positive" CHECK ("bookings"."seat_count" BETWEEN 1 AND 1000),
	CONSTRAINT "bookings_failed_has_reason" CHECK (("bookings"."status" = 'FAILED') = ("bookings"."failure_reason" IS NOT NULL)),
	CONSTRAINT "bookings_held_has_expiry" CHECK ("bookings"."status" <> 'HELD' OR "bookings"."hold_expires_at" IS NOT NULL),
	CONSTRAINT "bookings_confirmed_consistent" CHECK (("bookings"."status" = 'CONFIRMED') = ("bookings"."confirmed_at" IS NOT NULL)),
	CONSTRAINT "bookings_seats_match_count" CHECK ("bookings"."status" NOT IN ('HELD', 'CONFIRMED', 'EXPIRED', 'CANCELLED') OR cardinality("bookings"."seat_ids") = "bookings"."seat_count"),
	CONSTRAINT "bookings_labels_match_ids" CHECK (cardinality("bookings"."seat_ids") = cardinality("bookings"."seat_labels"))
);
--> statement-breakpoint
ALTER TABLE "show_sections" ADD CONSTRAINT "show_sections_show_id_shows_id_fk" FOREIGN KEY ("show_id") REFERENCES "public"."shows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "seats" ADD CONSTRAINT "seats_show_id_shows_id_fk" FOREIGN KEY ("show_id") REFERENCES "public"."shows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "seats" ADD CONSTRAINT "seats_booking_same_show_fk" FOREIGN KEY ("booking_id","show_id") REFERENCES "public"."bookings"("id","show_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bookings" ADD CONSTRAINT "bookings_show_id_shows_id_fk" FOREIGN KEY ("show_id") REFERENCES "public"."shows"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "seats_claim_idx" ON "seats" USING btree ("show_id","section_rank","row","number") WHERE "seats"."status" = 'AVAILABLE';--> statement-breakpoint
CREATE INDEX "seats_booking_idx" ON "seats" USING btree ("booking_id") WHERE "seats"."booking_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "bookings_hold_expiry_idx" ON "bookings" USING btree ("hold_expires_at") WHERE "bookings"."status" = 'HELD';--> statement-breakpoint
CREATE INDEX "bookings_customer_live_idx" ON "bookings" USING btree ("show_id","customer_email") WHERE "bookings"."status" IN ('HELD', 'CONFIRMED');