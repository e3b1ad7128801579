import { describe, expect, it } from 'vitest';
import type { StatusView } from '../shared/booking/standing.js';
import { eventIdOf, isNewer } from '../services/api/live/status-events.js';
import { preferredWait } from '../services/api/prefer.js';
import { AppError } from '../services/api/errors.js';

/** The booking stream's event ids and Last-Event-ID rule, and the Prefer: wait parser: no services needed. */

const id = '6d277ed1-c3bd-4346-8a9b-35c4d08f7086';
const queued = (position: number): StatusView => ({ id, status: 'QUEUED', position, updated_at: '2026-12-01T10:00:00.000Z' });
const held: StatusView = { id, status: 'HELD', seats: ['A-1'], hold_expires_at: '2026-12-01T10:02:00.000Z', updated_at: '2026-12-01T10:00:01.000Z' };
const confirmed: StatusView = { id, status: 'CONFIRMED', seats: ['A-1'], updated_at: '2026-12-01T10:00:30.000Z' };

describe('booking event ids', () => {
  it('name the state, not the read: the same state read twice (other updated_at) has the same id', () => {
    expect(eventIdOf(held)).toBe(eventIdOf({ ...held, updated_at: '2026-12-01T10:00:01.999Z' }));
    expect(eventIdOf(held)).not.toBe(eventIdOf({ ...held, seats: ['A-2'] }));
    expect(eventIdOf(queued(3))).toMatch(/^0\.3\.[\w-]{12}$/);
    expect(eventIdOf(confirmed)).toMatch(/^2\.0\./);
  });

  it('count as newer: no id, a foreign id, a later stage, a place nearer the front; not the same state or an earlier stage', () => {
    expect(isNewer(held, null)).toBe(true);
    expect(isNewer(held, 'something-else')).toBe(true);
    expect(isNewer(held, eventIdOf(held))).toBe(false);
    expect(isNewer(confirmed, eventIdOf(held))).toBe(true);
    expect(isNewer(held, eventIdOf(confirmed))).toBe(false);
    expect(isNewer(queued(2), eventIdOf(queued(5)))).toBe(true);
    expect(isNewer(queued(5), eventIdOf(queued(2)))).toBe(false);
    expect(isNewer(held, eventIdOf(queued(1)))).toBe(true);
    expect(isNewer({ ...queued(2), phase: 'IN_LINE' } as StatusView, eventIdOf(queued(2)))).toBe(true);
  });
});

describe('Prefer: wait', () => {
  it('reads wait among other preferences, clamps it to 30, and ignores a header without it', () => {
    expect(preferredWait(undefined)).toBeNull();
    expect(preferredWait('return=minimal')).toBeNull();
    expect(preferredWait('wait=10')).toBe(10);
    expect(preferredWait('respond-async, WAIT = 7')).toBe(7);
    expect(preferredWait('wait="12";foo=bar')).toBe(12);
    expect(preferredWait(['return=minimal', 'wait=3'])).toBe(3);
    expect(preferredWait('wait=0')).toBe(0);
    expect(preferredWait('wait=600')).toBe(30);
  });

  it('refuses a wait that is not a whole number of seconds, naming the header', () => {
    for (const bad of ['wait', 'wait=', 'wait=soon', 'wait=1.5', 'wait=-1']) {
      let error: unknown;
      try {
        preferredWait(bad);
      } catch (caught) {
        error = caught;
      }
      expect(error, bad).toBeInstanceOf(AppError);
      expect((error as AppError).details).toEqual([{ field: 'Prefer', problem: expect.stringContaining('whole number') }]);
    }
  });
});
