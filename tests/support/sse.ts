/**
 * A test's view of a server-sent events stream: the raw text as it arrived (to check the wire
 * format) and the events parsed from it, with a way to wait for the next one. Reads through
 * fetch, so the test controls Last-Event-ID itself (an EventSource would reconnect on its own).
 */

export type SseEvent = { id?: string; event?: string; data?: string; retry?: number };

export class SseStream {
  raw = '';
  readonly events: SseEvent[] = [];
  /** Resolves when the server ends the stream (or the test aborts it). */
  readonly ended: Promise<void>;
  private buffer = '';
  private readonly waiters = new Set<() => void>();
  private done = false;

  private constructor(
    readonly response: Response,
    private readonly controller: AbortController,
  ) {
    this.ended = this.read();
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
    const controller = new AbortController();
    const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
    return new SseStream(response, controller);
  }

  get status(): number {
    return this.response.status;
  }

  get closed(): boolean {
    return this.done;
  }

  /** Waits for the first event (from `from` on) that matches; fails if the stream ends first. */
  async next(match: (event: SseEvent) => boolean = () => true, from = 0, timeoutMs = 30_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find(match);
      if (found) return found;
      if (this.done) throw new Error(`stream ended without the event; got:\n${this.raw}`);
      if (Date.now() > deadline) throw new Error(`no such event within ${timeoutMs} ms; got:\n${this.raw}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Status events' data, parsed. */
  statuses(): Array<{ status: string } & Record<string, unknown>> {
    return this.events.filter((event) => event.event === 'status').map((event) => JSON.parse(event.data!) as { status: string });
  }

  close(): void {
    this.controller.abort();
  }

  private async read(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.response.body ?? []) {
        const text = decoder.decode(chunk as Uint8Array, { stream: true });
        this.raw += text;
        this.buffer += text;
        let end: number;
        while ((end = this.buffer.indexOf('\n\n')) >= 0) {
          const block = this.buffer.slice(0, end);
          this.buffer = this.buffer.slice(end + 2);
          const event = parseBlock(block);
          if (event) this.events.push(event);
        }
        this.wake();
      }
    } catch {
      // aborted by the test, or the connection dropped: the stream is over either way
    } finally {
      this.done = true;
      this.wake();
    }
  }

  private wake(): void {
    for (const waiter of this.waiters) waiter();
    this.waiters.clear();
  }
}

/** One event block; comment-only blocks (heartbeats) give null. */
function parseBlock(block: string): SseEvent | null {
  const event: SseEvent = {};
  let fields = 0;
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || line === '') continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    fields++;
    if (name === 'id') event.id = value;
    else if (name === 'event') event.event = value;
    else if (name === 'data') event.data = event.data === undefined ? value : `${event.data}\n${value}`;
    else if (name === 'retry') event.retry = Number(value);
  }
  return fields > 0 ? event : null;
}
