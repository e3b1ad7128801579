import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { KeyedBatcher } from '../services/worker/batcher.js';

/**
 * WORKER_BATCH_INTERVAL_MS in the worker's group commit (services/worker/batcher.ts): requests
 * waiting behind a show's transaction go into the next one once the interval since the last
 * start has passed, or at once when they fill a batch; a request for a show with nothing
 * running or waiting starts at once. The batcher is plain in-memory scheduling, so `decide`
 * here records what it is given instead of running a claim transaction.
 */

type Request = { id: string };
type Started = { key: string; ids: string[]; at: number };

function recordingBatcher(maxBatchSize: number, intervalMs: number) {
  const started: Started[] = [];
  const batcher = new KeyedBatcher<Request, string>(
    async (key, requests) => {
      started.push({ key, ids: requests.map((request) => request.id), at: performance.now() });
      await delay(1);
      return new Map(requests.map((request) => [request.id, `decided ${request.id}`]));
    },
    maxBatchSize,
    intervalMs,
  );
  return { batcher, started };
}

/** Resolves once nothing is running or waiting (the batcher lets go of a show just after its requests' promises settle). */
async function idle(batcher: KeyedBatcher<Request, string>): Promise<void> {
  while (batcher.size > 0) await new Promise((resolve) => setImmediate(resolve));
}

/** Settles to 'pending' when `promise` has not settled within `ms`: far longer than the code under test needs, far shorter than the interval it must not wait out. */
const settledWithin = <T>(promise: Promise<T>, ms: number) => Promise.race([promise, delay(ms).then(() => 'pending' as const)]);

describe('WORKER_BATCH_INTERVAL_MS', () => {
  it('requests arriving behind a quick transaction wait out the interval, then go together', async () => {
    const interval = 300;
    const { batcher, started } = recordingBatcher(10, interval);
    // The batcher reads its clock for r1's start before calling decide, which records `at`: on a
    // busy machine the process can be descheduled between the two, so the interval is measured
    // from before the submit, a moment no later than the batcher's own.
    const beforeFirst = performance.now();
    const first = batcher.submit('show', { id: 'r1' });
    const behind = [batcher.submit('show', { id: 'r2' })];
    await first; // r1's transaction took a millisecond; r2 waits for the interval
    await delay(50);
    behind.push(batcher.submit('show', { id: 'r3' }));
    await delay(50);
    behind.push(batcher.submit('show', { id: 'r4' }));
    expect(await Promise.all(behind)).toEqual(['decided r2', 'decided r3', 'decided r4']);
    expect(started.map((batch) => batch.ids)).toEqual([['r1'], ['r2', 'r3', 'r4']]);
    // Timers count whole milliseconds, so one may fire a fraction early by performance.now().
    expect(started[1]!.at - beforeFirst).toBeGreaterThanOrEqual(interval - 2);
  });

  it('a full batch does not wait', async () => {
    const { batcher, started } = recordingBatcher(3, 60_000);
    const first = batcher.submit('show', { id: 'r1' });
    const full = ['r2', 'r3', 'r4'].map((id) => batcher.submit('show', { id }));
    await first;
    expect(await settledWithin(Promise.all(full), 5_000)).toEqual(['decided r2', 'decided r3', 'decided r4']);
    expect(started.map((batch) => batch.ids)).toEqual([['r1'], ['r2', 'r3', 'r4']]);
  });

  it('a batch that fills while it waits leaves at once', async () => {
    const { batcher, started } = recordingBatcher(3, 60_000);
    const first = batcher.submit('show', { id: 'r1' });
    // r2 arrives while r1's transaction runs, and waits out the interval alone...
    const waiting = [batcher.submit('show', { id: 'r2' })];
    await first;
    expect(started.map((batch) => batch.ids)).toEqual([['r1']]);
    // ...until two more fill its batch.
    waiting.push(batcher.submit('show', { id: 'r3' }), batcher.submit('show', { id: 'r4' }));
    expect(await settledWithin(Promise.all(waiting), 5_000)).toEqual(['decided r2', 'decided r3', 'decided r4']);
    expect(started.map((batch) => batch.ids)).toEqual([['r1'], ['r2', 'r3', 'r4']]);
  });

  it('a request for a show with nothing running or waiting starts at once, and other shows are not held up', async () => {
    const { batcher, started } = recordingBatcher(10, 60_000);
    expect(await batcher.submit('show', { id: 'r1' })).toBe('decided r1');
    await idle(batcher);
    expect(await settledWithin(batcher.submit('show', { id: 'r2' }), 5_000)).toBe('decided r2');
    const other = batcher.submit('other', { id: 'o1' });
    expect(await settledWithin(other, 5_000)).toBe('decided o1');
    expect(started.map((batch) => [batch.key, batch.ids])).toEqual([
      ['show', ['r1']],
      ['show', ['r2']],
      ['other', ['o1']],
    ]);
  });
});
