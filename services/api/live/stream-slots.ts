/**
 * The per-process cap on live connections (SSE_MAX_STREAMS): booking streams, show streams and
 * polls waiting under `Prefer: wait` each hold a slot while open. It also knows every open one,
 * so a graceful shutdown can end them all (their clients reconnect to another replica), and it
 * counts them for the metrics.
 */

export type StreamKind = 'booking' | 'show' | 'wait';

export type Slot = { release: () => void };

type Open = { kind: StreamKind; end: () => void };

export class StreamSlots {
  private readonly open = new Set<Open>();
  private closing = false;

  constructor(private readonly max: number) {}

  /**
   * A slot, or null when the process is at its cap or shutting down. `end` is called at
   * shutdown: it must end the stream (or answer the waiting poll) and release the slot.
   */
  acquire(kind: StreamKind, end: () => void): Slot | null {
    if (this.closing || this.open.size >= this.max) return null;
    const entry: Open = { kind, end };
    this.open.add(entry);
    return { release: () => this.open.delete(entry) };
  }

  /** Open slots by kind (the open-streams gauge). */
  counts(): Record<StreamKind, number> {
    const counts: Record<StreamKind, number> = { booking: 0, show: 0, wait: 0 };
    for (const entry of this.open) counts[entry.kind]++;
    return counts;
  }

  /** True once endAll ran: the process is shutting down. */
  get shuttingDown(): boolean {
    return this.closing;
  }

  get size(): number {
    return this.open.size;
  }

  /** Shutdown: refuse new streams, end the open ones. */
  endAll(): void {
    this.closing = true;
    for (const entry of [...this.open]) {
      try {
        entry.end();
      } finally {
        this.open.delete(entry);
      }
    }
  }
}
