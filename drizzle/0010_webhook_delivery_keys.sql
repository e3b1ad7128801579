-- Keys the admin lists page by (services/api/pagination.ts: a cursor is a millisecond instant
-- and a UUID): delivery ids become UUIDs, and the creation times of webhooks and deliveries are
-- kept to the millisecond, so a cursor names a row's position exactly. Deliveries are only ever
-- referred to by id through the API, so new random ids for existing rows lose nothing.
DROP INDEX "webhook_deliveries_webhook_idx";--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ALTER COLUMN "id" DROP IDENTITY;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ALTER COLUMN "id" SET DATA TYPE uuid USING gen_random_uuid();--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ALTER COLUMN "id" SET DEFAULT gen_random_uuid();--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ALTER COLUMN "created_at" SET DATA TYPE timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "webhooks" ALTER COLUMN "created_at" SET DATA TYPE timestamp (3) with time zone;--> statement-breakpoint
CREATE INDEX "webhook_deliveries_webhook_idx" ON "webhook_deliveries" USING btree ("webhook_id","created_at","id");
