import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Where a webhook may point (server-side request forgery). Outside production anything http(s)
 * goes, so a receiver on localhost works. In production a target that is, or resolves to, a
 * loopback, private or link-local address is refused unless WEBHOOK_ALLOWED_HOSTS lists it: at
 * registration (the API), and again on every connection the relay opens (the address actually
 * dialled), so a name that resolves elsewhere later (DNS rebinding) is still refused.
 */

export type TargetPolicy = { production: boolean; allowedHosts: readonly string[] };

/** Thrown (or passed to a lookup callback) for a target the policy refuses. */
export class TargetRefusedError extends Error {
  override name = 'TargetRefusedError';
  readonly code = 'WEBHOOK_TARGET_REFUSED';
}

/** Loopback, private, link-local, unspecified, carrier-grade NAT and unique-local ranges. */
const INTERNAL = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const) {
  INTERNAL.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const) {
  INTERNAL.addSubnet(network, prefix, 'ipv6');
}

export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return INTERNAL.check(address, 'ipv4');
  if (family !== 6) return false;
  // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) reaches the IPv4 host.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? INTERNAL.check(mapped[1]!, 'ipv4') : INTERNAL.check(address, 'ipv6');
}

/** The problem with a webhook URL's form, or null: absolute, http or https, with a host. */
export function urlProblem(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must use http or https';
  if (!url.hostname) return 'must name a host';
  if (url.username || url.password) return 'must not carry credentials';
  return null;
}

/** A URL's host as DNS and net see it: without the brackets of an IPv6 literal. */
const bareHost = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();

function allowedByList(policy: TargetPolicy, host: string, address?: string): boolean {
  const list = new BlockList();
  for (const entry of policy.allowedHosts) {
    const [network = '', prefix] = entry.split('/');
    const family = isIP(network);
    if (family === 0) continue;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(network, type);
    else list.addSubnet(network, Number(prefix), type);
  }
  if (policy.allowedHosts.includes(host)) return true;
  return [host, address].some((value) => value !== undefined && isIP(value) !== 0 && list.check(value, isIP(value) === 4 ? 'ipv4' : 'ipv6'));
}

function refusal(host: string, address: string): TargetRefusedError {
  return new TargetRefusedError(
    host === address
      ? `${host} is a loopback, private or link-local address (allow it with WEBHOOK_ALLOWED_HOSTS)`
      : `${host} resolves to ${address}, a loopback, private or link-local address (allow it with WEBHOOK_ALLOWED_HOSTS)`,
  );
}

type Resolve = (host: string) => Promise<LookupAddress[]>;
const resolveAll: Resolve = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));

/**
 * At registration: refuses (throws TargetRefusedError) a URL whose host is, or resolves to, an
 * internal address under the policy. A name that does not resolve yet is accepted: the relay
 * checks again when it connects.
 */
export async function checkTarget(rawUrl: string, policy: TargetPolicy, resolve: Resolve = resolveAll): Promise<void> {
  if (!policy.production) return;
  const host = bareHost(new URL(rawUrl));
  if (allowedByList(policy, host)) return;
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await resolve(host).catch(() => []);
  for (const { address } of addresses) {
    if (isInternalAddress(address) && !allowedByList(policy, host, address)) throw refusal(host, address);
  }
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for the relay's sockets (undici's connect option): resolves as usual, then refuses
 * the connection when the address it would dial is internal under the policy. undici hands IP
 * literals straight to the socket, so the relay checks those itself (`refusedLiteral`).
 */
export function guardedLookup(policy: TargetPolicy) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const host = hostname.toLowerCase();
      const refused = policy.production ? addresses.find(({ address }) => isInternalAddress(address) && !allowedByList(policy, host, address)) : undefined;
      if (refused) return callback(Object.assign(refusal(host, refused.address), { errno: undefined }), []);
      if (options.all) return callback(null, addresses);
      const first = addresses[0]!;
      return callback(null, first.address, first.family);
    });
  };
}

/** For an IP-literal URL (which no lookup sees): the refusal, or null when it may be dialled. */
export function refusedLiteral(rawUrl: string, policy: TargetPolicy): TargetRefusedError | null {
  if (!policy.production) return null;
  const host = bareHost(new URL(rawUrl));
  if (isIP(host) === 0 || !isInternalAddress(host) || allowedByList(policy, host)) return null;
  return refusal(host, host);
}
