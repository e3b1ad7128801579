import { Pool } from 'undici';
import { Latency } from './latency.js';

/**
 * `--seat-readers N`: N clients reading a big show's seat map in a loop while a scenario's
 * burst runs, as browsers opening the seat picker during a sale would. Each read asks for gzip
 * and sends no If-None-Match (the worst case: a full body every time). Booking latency with
 * and without them shows whether seat-map traffic slows POST /booking (issue 11, item 10).
 */

export type SeatReadersSummary = {
  readers: number;
  reads: number;
  failures: number;
  readsPerSecond: number;
  megabytesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
};

export class SeatMapReaders {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly latency = new Latency();
  private failures = 0;
  private bytes = 0;
  private startedAt = 0;
  private readonly pools: Pool[];

  constructor(
    urls: readonly string[],
    private readonly showId: string,
    private readonly readers: number,
  ) {
    this.pools = urls.map((url) => new Pool(url, { connections: Math.max(1, Math.ceil(readers / urls.length)) }));
  }

  start(): void {
    this.running = true;
    this.startedAt = performance.now();
    this.loops = Array.from({ length: this.readers }, (_, index) => this.loop(this.pools[index % this.pools.length]!));
  }

  private async loop(pool: Pool): Promise<void> {
    while (this.running) {
      const started = performance.now();
      try {
        const { statusCode, body } = await pool.request({
          method: 'GET',
          path: `/shows/${this.showId}/seats`,
          headers: { 'accept-encoding': 'gzip' },
        });
        const payload = await body.arrayBuffer();
        if (statusCode !== 200) throw new Error(`GET seats answered ${statusCode}`);
        this.bytes += payload.byteLength;
        this.latency.record(performance.now() - started);
      } catch {
        this.failures++;
        // A refused read (503 under load shedding) is retried after a pause, as a browser would.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async stop(): Promise<SeatReadersSummary> {
    this.running = false;
    await Promise.all(this.loops);
    const seconds = (performance.now() - this.startedAt) / 1_000;
    await Promise.all(this.pools.map((pool) => pool.close()));
    const { count, p50, p99 } = this.latency.summary();
    return {
      readers: this.readers,
      reads: count,
      failures: this.failures,
      readsPerSecond: count / seconds,
      megabytesPerSecond: this.bytes / 1e6 / seconds,
      p50Ms: p50,
      p99Ms: p99,
    };
  }
}

export function formatSeatReaders(summary: SeatReadersSummary): string {
  return (
    `seat-map readers: ${summary.readers} in a loop, ${summary.reads.toLocaleString('en-US')} reads ` +
    `(${summary.readsPerSecond.toFixed(0)}/s, ${summary.megabytesPerSecond.toFixed(1)} MB/s compressed), ` +
    `p50 ${summary.p50Ms.toFixed(0)} ms, p99 ${summary.p99Ms.toFixed(0)} ms, ${summary.failures} failed`
  );
}
