import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from '../services/worker/worker.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { openTestContext } from './support/context.js';
import { call, createShow } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * Customer emails never reach the logs, not even inside the free text of an error: drizzle's
 * DrizzleQueryError repeats a failed query's parameters in its message, its `params` and (via
 * the cause) its stack. Queries are failed on purpose and the captured log is searched.
 */

const EMAILS = ['Alice.Buyer@Example.com', 'bob+tickets@mail.example.org', 'carol@refused.example'];

const ctx = await openTestContext();
let worker: RunningWorker | undefined;

function capture(name: string): { logger: Logger; raw: string[]; lines: Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger(ctx.configWith({ LOG_LEVEL: 'info' }), name, {
    write: (line: string) => {
      raw.push(line);
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return { logger, raw, lines };
}

function expectNoEmail(raw: string[]): void {
  const log = raw.join('\n').toLowerCase();
  for (const email of EMAILS) expect(log).not.toContain(email.toLowerCase());
  expect(log).not.toMatch(/[\w.+-]+@[\w-]+\.[\w.-]+/);
}

afterAll(async () => {
  await worker?.close();
});

describe('emails in error logs', () => {
  it('are scrubbed from a failed query however the error is logged', async () => {
    const { logger, raw, lines } = capture('redaction');
    const failure = await ctx.db
      .execute(sql`SELECT * FROM table_that_was_dropped WHERE customer_email = ANY(${sql.param(EMAILS)}::text[])`)
      .then(() => undefined, (error: unknown) => error as Error);
    expect(failure).toBeInstanceOf(Error);
    // The error itself does carry the emails: that is what must not get through.
    expect(failure!.message).toContain(EMAILS[0]);

    logger.error({ err: failure }, 'query failed');
    logger.error(failure);
    logger.warn({ err: failure!.message }, 'query failed');
    logger.error({ err: new Error('could not decide the batch', { cause: failure }) }, 'batch failed');
    logger.info(`retrying ${EMAILS[1]}`);

    expect(lines).toHaveLength(5);
    expectNoEmail(raw);
    // Still useful: the statement and the driver's reason are there, the values are not.
    const first = lines[0]!.err as { message: string; stack: string; params: unknown };
    expect(first.message).toContain('table_that_was_dropped');
    expect(first.message).toContain('[redacted]');
    expect(first.stack).toContain('does not exist');
    expect(JSON.stringify(first.params)).toContain('[redacted]');
  });

  it('are scrubbed from a worker whose claim transaction fails for a whole batch', async () => {
    // Refuses one customer's bookings: every claim of a batch holding it fails (not transiently).
    await ctx.pool.query(`ALTER TABLE bookings ADD CONSTRAINT refuse_for_test CHECK (customer_email NOT LIKE '%@refused.example') NOT VALID`);
    const { logger, raw, lines } = capture('worker');
    const api = await ctx.startApi({ ENQUEUE_BATCH_SIZE: '10' });
    const show = await createShow(api.app, { total_seats: 10 });
    const accepted = await Promise.all(
      EMAILS.map((email) => call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: email, seat_count: 1 } })),
    );
    expect(accepted.map((reply) => reply.status)).toEqual([202, 202, 202]);
    worker = await startWorker(ctx.configWith({ LOG_LEVEL: 'info' }), logger);

    const failed = await waitFor(async () => {
      const line = lines.find((entry) => entry.level === 50 && entry.msg === 'job failed; BullMQ retries it unless attempts are exhausted');
      return line;
    }, 'the claim to fail');
    expect(JSON.stringify(failed.err)).toContain('refuse_for_test');
    await worker.close();
    worker = undefined;
    expectNoEmail(raw);
  });
});
