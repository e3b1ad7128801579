/**
 * Following something that changes on the server: its server-sent event stream when the API
 * has one, polling when it has not, and polling again while a stream is down (the browser
 * reconnects an EventSource by itself, honouring the server's `retry:` hint). One home for
 * "keep this view live", used by the buyer's and the admin page alike.
 */

export type Follow = {
  /** The SSE URL, or null when the API has no stream for this (see apiCapabilities). */
  stream: string | null;
  /** Handlers by event name; each gets the event's parsed JSON data. */
  events: Record<string, (data: unknown) => void>;
  /** One poll; resolves to the milliseconds until the next one. */
  poll: () => Promise<number>;
  /** Called when a poll fails (network, 5xx): the page says so; polling goes on. */
  onPollError?: (error: unknown) => void;
};

const RETRY_AFTER_FAILED_POLL_MS = 3_000;

export type Following = {
  /** Stops streaming and polling: on a final state, or when leaving the view. */
  stop: () => void;
  /** Polls once now (something the page did may have changed it), unless a stream is live. */
  refresh: () => void;
};

export function follow({ stream, events, poll, onPollError }: Follow): Following {
  let stopped = false;
  let timer: number | undefined;
  let polling = false;
  let source: EventSource | undefined;

  const schedule = (ms: number) => {
    window.clearTimeout(timer);
    if (!stopped && polling) timer = window.setTimeout(tick, Math.max(ms, 250));
  };
  const tick = () => {
    poll().then(schedule, (error: unknown) => {
      onPollError?.(error);
      schedule(RETRY_AFTER_FAILED_POLL_MS);
    });
  };
  const startPolling = () => {
    if (polling || stopped) return;
    polling = true;
    tick();
  };
  const stopPolling = () => {
    polling = false;
    window.clearTimeout(timer);
  };

  if (stream) {
    source = new EventSource(stream);
    for (const [name, handle] of Object.entries(events)) {
      source.addEventListener(name, (event) => {
        try {
          handle(JSON.parse((event as MessageEvent<string>).data));
        } catch {
          // A malformed event is skipped; the next one (or a poll) brings the state.
        }
      });
    }
    source.addEventListener('open', stopPolling);
    // CONNECTING: the browser reconnects by itself; poll meanwhile. CLOSED: it gave up
    // (the stream was refused): polling takes over for good.
    source.addEventListener('error', startPolling);
  } else {
    startPolling();
  }

  return {
    stop: () => {
      stopped = true;
      stopPolling();
      source?.close();
    },
    refresh: () => {
      if (!stopped && source?.readyState !== EventSource.OPEN) tick();
    },
  };
}
