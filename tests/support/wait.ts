/**
 * The one way tests wait: on a condition, not a clock. Both helpers poll `probe` until it
 * yields a value and fail after `timeoutMs` naming `what`; they differ only in what they do
 * with a probe that throws.
 */

type Poll<T> = {
  what: string;
  probe: () => Promise<T> | T;
  done: (value: T) => boolean;
  timeoutMs: number;
  intervalMs: number;
  /** Keep polling through errors (a service still starting), reporting the last one at the end. */
  retryErrors: boolean;
  /** Added to the timeout message, e.g. the last value seen. */
  describe?: (last: T | undefined) => string;
};

async function poll<T>({ what, probe, done, timeoutMs, intervalMs, retryErrors, describe }: Poll<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let last: T | undefined;
  for (;;) {
    try {
      last = await probe();
      if (done(last)) return last;
    } catch (error) {
      if (!retryErrors) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}${describe ? `; ${describe(last)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Waits until `probe` returns something other than `undefined`. An error thrown by the probe
 * fails at once (probes may assert, e.g. "every answer so far was a 503").
 */
export function waitFor<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 45_000,
  describe?: (last: T | undefined) => string,
): Promise<T> {
  return poll<T | undefined>({ what, probe, done: (value) => value !== undefined, timeoutMs, intervalMs: 25, retryErrors: false, describe }) as Promise<T>;
}

/** Waits until `check` returns a truthy value, polling through errors (for services still starting). */
export function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  return poll<T | undefined | null | false>({ what, probe: check, done: (value) => Boolean(value), timeoutMs, intervalMs, retryErrors: true }) as Promise<T>;
}
