import { badRequest } from './errors.js';

/**
 * The `wait` preference of a `Prefer` header (RFC 7240 §4.3): how many seconds the client is
 * willing to wait for the answer. Other preferences are ignored, as the RFC allows. A value
 * above MAX_WAIT_SECONDS is clamped to it (a preference is a hint; the client learns what was
 * applied from Preference-Applied); a value that is not a whole number of seconds is a 400,
 * naming the header, rather than silently ignored.
 */
export const MAX_WAIT_SECONDS = 30;

export function preferredWait(header: string | string[] | undefined): number | null {
  if (header === undefined) return null;
  // Several Prefer headers are one comma-separated list (RFC 9110 §5.3).
  const preferences = (Array.isArray(header) ? header.join(',') : header).split(',');
  for (const preference of preferences) {
    // token [ "=" word ] *( ";" parameter ): the parameters mean nothing for wait.
    const [nameValue = ''] = preference.split(';');
    const equals = nameValue.indexOf('=');
    const name = (equals < 0 ? nameValue : nameValue.slice(0, equals)).trim().toLowerCase();
    if (name !== 'wait') continue;
    const value = equals < 0 ? '' : nameValue.slice(equals + 1).trim().replace(/^"(.*)"$/, '$1');
    if (!/^\d{1,9}$/.test(value)) throw badRequest('Prefer', 'wait must be a whole number of seconds, e.g. wait=10');
    return Math.min(Number(value), MAX_WAIT_SECONDS);
  }
  return null;
}
