import { build, type Histogram } from 'hdr-histogram-js';

/**
 * A latency distribution: an HDR histogram (microsecond resolution, 3 significant digits) for
 * exact percentiles, plus coarse log-scale buckets the HTML report draws as a histogram.
 */

/** Ten buckets per decade from 1 µs to 10^9 µs (about 17 minutes). */
const BUCKETS_PER_DECADE = 10;
const BUCKET_COUNT = 9 * BUCKETS_PER_DECADE + 1;

export type LatencySummary = { count: number; p50: number; p95: number; p99: number; max: number; mean: number };
export type LatencyBucket = { upToMs: number; count: number };

export class Latency {
  private readonly hdr: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  private readonly buckets = new Uint32Array(BUCKET_COUNT);

  record(milliseconds: number): void {
    const micros = Math.max(1, Math.round(milliseconds * 1_000));
    this.hdr.recordValue(micros);
    const index = Math.min(BUCKET_COUNT - 1, Math.max(0, Math.ceil(Math.log10(micros) * BUCKETS_PER_DECADE)));
    this.buckets[index]! += 1;
  }

  get count(): number {
    return this.hdr.totalCount;
  }

  /** Percentiles in milliseconds; zeros when nothing was recorded. */
  summary(): LatencySummary {
    const ms = (micros: number) => Math.round(micros) / 1_000;
    if (this.hdr.totalCount === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 };
    // HDR answers a percentile with the top of its bucket (within 0.1%), which can be above the
    // largest value recorded; no percentile is above the maximum.
    const at = (percentile: number) => ms(Math.min(this.hdr.getValueAtPercentile(percentile), this.hdr.maxValue));
    return {
      count: this.hdr.totalCount,
      p50: at(50),
      p95: at(95),
      p99: at(99),
      max: ms(this.hdr.maxValue),
      mean: ms(this.hdr.mean),
    };
  }

  /** Log-scale buckets from the first to the last non-empty one (gaps kept, so the axis is continuous). */
  histogram(): LatencyBucket[] {
    const first = this.buckets.findIndex((count) => count > 0);
    if (first < 0) return [];
    let last = this.buckets.length - 1;
    while (this.buckets[last] === 0) last--;
    const result: LatencyBucket[] = [];
    for (let index = first; index <= last; index++) {
      result.push({ upToMs: 10 ** (index / BUCKETS_PER_DECADE) / 1_000, count: this.buckets[index]! });
    }
    return result;
  }
}
