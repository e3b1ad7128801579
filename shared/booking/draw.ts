import { createHash, createHmac } from 'node:crypto';

/**
 * The draw of a show's waiting room, and its proof. Everyone who joined the waiting room before
 * the sale opened is put in line by ascending HMAC-SHA256(key = the show's 32-byte seed,
 * message = the booking id as its lowercase UUID string, UTF-8), compared as lowercase hex.
 * The seed is secret until the draw and committed from the show's creation by its SHA-256
 * (`seed_sha256`), so nobody, the operator included, can choose an order once the room fills,
 * and anybody can check the order afterwards: SHA-256(seed) is the commitment, and the HMAC of
 * their own id stands at their place in `keys`.
 *
 * Pure functions: the Redis side of the line is shared/queue/show-line.ts.
 */

/** The key a booking id draws with: lowercase hex, 64 characters. */
export function drawKey(seed: Buffer, bookingId: string): string {
  return createHmac('sha256', seed).update(bookingId.toLowerCase(), 'utf8').digest('hex');
}

/** The seed's public commitment. */
export function seedCommitment(seed: Buffer): string {
  return createHash('sha256').update(seed).digest('hex');
}

export type DrawnEntry = { id: string; key: string };

/**
 * The waiting room in line order. Keys have one length and one alphabet, so comparing the
 * strings compares the numbers; two equal keys (a SHA-256 collision) would keep any order.
 */
export function drawOrder(seed: Buffer, bookingIds: readonly string[]): DrawnEntry[] {
  return bookingIds
    .map((id) => ({ id, key: drawKey(seed, id) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** What GET /shows/:id/draw publishes once the room is drawn. */
export type DrawProof = { seed_sha256: string; seed: string; drawn_at: string; entries: number; keys: string[] };

/**
 * A buyer's (or the audit's) check of a published draw: the seed matches its commitment, the
 * keys are in ascending order, and, given an id, where its key stands (-1 when absent).
 */
export function verifyDraw(proof: Pick<DrawProof, 'seed' | 'seed_sha256' | 'keys'>, bookingId?: string): { valid: boolean; place: number } {
  const seed = Buffer.from(proof.seed, 'hex');
  const committed = seed.length === 32 && seedCommitment(seed) === proof.seed_sha256;
  const ordered = proof.keys.every((key, index) => index === 0 || proof.keys[index - 1]! <= key);
  const place = bookingId === undefined ? -1 : proof.keys.indexOf(drawKey(seed, bookingId));
  return { valid: committed && ordered, place };
}

/**
 * A show's line as it can be recovered after the sale from Postgres alone (the burst audit
 * counts overtakes against it): the waiting room, every request accepted before the opening,
 * in draw order, then everyone else first come, first served. (A request a paused sale parked
 * keeps its place, so a pause does not change this order.)
 */
export function lineOrder(seed: Buffer, salesOpenAt: Date, requests: ReadonlyArray<{ id: string; acceptedAt: Date }>): string[] {
  const opening = salesOpenAt.getTime();
  const room = requests.filter((request) => request.acceptedAt.getTime() < opening).map((request) => request.id);
  const after = requests
    .filter((request) => request.acceptedAt.getTime() >= opening)
    .sort((a, b) => a.acceptedAt.getTime() - b.acceptedAt.getTime())
    .map((request) => request.id);
  return [...drawOrder(seed, room).map((entry) => entry.id), ...after];
}
