import { defineConfig } from 'drizzle-kit';

// Migrations are generated from the schema and committed; `npm run migrate` applies them.
export default defineConfig({
  dialect: 'postgresql',
  schema: './shared/db/schema/index.ts',
  out: './drizzle',
  strict: true,
});
