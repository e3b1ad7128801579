/**
 * Waits on a condition, not a clock: polls `probe` until it returns something other than
 * `undefined`, and fails after `timeoutMs` naming `what`. An error thrown by the probe fails at
 * once (probes may assert, e.g. "every answer so far was a 503"); for services still starting,
 * whose probes are expected to throw, use `waitUntil` in processes.ts instead.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 45_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
