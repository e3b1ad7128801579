import { timestamp } from 'drizzle-orm/pg-core';

/** Timestamps are always stored with a time zone and read back as Date objects. */
export const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const createdAt = () => timestamptz('created_at').notNull().defaultNow();
export const updatedAt = () => timestamptz('updated_at').notNull().defaultNow();
