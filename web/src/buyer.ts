import {
  ApiError,
  FINAL_STATUSES,
  api,
  apiCapabilities,
  type BookingAccepted,
  type BookingRequest,
  type BookingStatus,
  type BookingView,
  type Seat,
  type ShowDetail,
  type ShowSummary,
  withAvailability,
} from './api.js';
import { $, countdown, formatDate, formatDuration, formatMoney, h, startCountdowns } from './dom.js';
import { follow } from './live.js';

/**
 * The buyer's page: the show list, a show with its seat map and the Book form, and the live
 * panel of the booking made from it. Views are chosen by the URL's hash (#/, #/shows/<id>), so
 * the back button and a reload work; the booking itself is kept in localStorage, so a reload
 * (or a closed tab) finds it again.
 */

const STORED_BOOKING = 'ticket-rush:booking';
/** The Book attempt not yet answered with a 202: its body and Idempotency-Key, reused on a retry. */
const PENDING_BOOK = 'ticket-rush:pending-book';
/** Larger shows get no drawn map (a phone would struggle): best available only. */
const MAP_SEAT_LIMIT = 2_000;
const LIST_REFRESH_MS = 5_000;
const SHOW_REFRESH_MS = 3_000;
const HELD_REFRESH_MS = 5_000;

type StoredBooking = { id: string; show_id: string };

const readJson = <T>(key: string): T | null => {
  try {
    return JSON.parse(localStorage.getItem(key) ?? 'null') as T | null;
  } catch {
    return null;
  }
};
const writeJson = (key: string, value: unknown) => localStorage.setItem(key, JSON.stringify(value));

/** An Idempotency-Key; getRandomValues works on plain-HTTP origins too, where randomUUID does not. */
function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

// ---------------------------------------------------------------- errors and views

const errorBox = () => $<HTMLParagraphElement>('#error');
function showError(error: unknown): void {
  const box = errorBox();
  box.textContent = error instanceof ApiError ? error.plain : 'Something went wrong on this page. Reload it to try again.';
  box.hidden = false;
}
function clearError(): void {
  errorBox().hidden = true;
  errorBox().textContent = '';
}

/** What the current view started (polls, streams); stopped when the view changes. */
let stopView: Array<() => void> = [];
function leaveView(): void {
  for (const stop of stopView) stop();
  stopView = [];
}

// ---------------------------------------------------------------- sale state

/** The sale state in words, with the instant its countdown runs to, if any. */
function saleState(show: ShowSummary): { words: string; until?: string; prefix?: string } {
  const opens = show.sales_open_at && Date.parse(show.sales_open_at) > Date.now() ? show.sales_open_at : undefined;
  switch (show.sales_state) {
    case 'SCHEDULED':
      return show.waiting_room_opens_at
        ? { words: 'Waiting room opens soon', until: show.waiting_room_opens_at, prefix: 'Waiting room opens in ' }
        : { words: 'Not on sale yet' };
    case 'WAITING_ROOM':
      return opens ? { words: 'Waiting room open', until: opens, prefix: 'Waiting room open: sales open in ' } : { words: 'Waiting room open' };
    case 'PAUSED':
      return { words: 'Sale paused' };
    case 'SOLD_OUT':
      return { words: 'Sold out' };
    case 'CLOSED':
      return { words: 'Sales closed' };
    case 'ON_SALE':
      // Not SOLD_OUT while seats are held: holds that lapse go back on sale.
      return { words: show.available_seats === 0 ? 'On sale: every seat is held for now' : 'On sale' };
    default:
      // An API without sale states: on sale from creation, sold out when nothing is left.
      if (opens) return { words: 'Sales open soon', until: opens, prefix: 'Sales open in ' };
      return { words: show.available_seats === 0 ? 'Sold out' : 'On sale' };
  }
}

function saleStateElement(show: ShowSummary): HTMLElement {
  const state = saleState(show);
  return h(
    'span',
    { class: 'state', 'data-state': show.sales_state ?? (show.available_seats === 0 ? 'SOLD_OUT' : 'ON_SALE') },
    state.until ? countdown(state.until, state.prefix ?? '', 'Opening now') : state.words,
  );
}

const availability = (show: ShowSummary) =>
  show.available_seats === 0 ? 'Sold out: no seat available' : `${show.available_seats} of ${show.total_seats} seats available`;

// ---------------------------------------------------------------- the show list

function openList(): void {
  $('#show').hidden = true;
  $('#shows').hidden = false;
  document.title = 'Ticket Rush';
  const list = $('#show-list');
  const render = (shows: ShowSummary[]) => {
    list.replaceChildren(
      ...(shows.length === 0
        ? [h('li', { class: 'empty' }, 'No upcoming shows yet.')]
        : shows.map((show) =>
            h(
              'li',
              {},
              h(
                'a',
                { class: 'card', href: `#/shows/${show.id}` },
                h('h2', {}, show.name),
                h('p', {}, h('time', { datetime: show.start_time }, formatDate(show.start_time))),
                h('p', {}, saleStateElement(show)),
                h('p', { class: 'availability' }, availability(show)),
                show.in_line ? h('p', {}, `${show.in_line} in line`) : null,
              ),
            ),
          )),
    );
  };
  const following = follow({
    stream: null,
    events: {},
    poll: async () => {
      const { body } = await api<{ shows: ShowSummary[] }>('GET', '/shows?limit=50');
      clearError();
      render(body.shows);
      return LIST_REFRESH_MS;
    },
    onPollError: showError,
  });
  stopView.push(following.stop);
}

// ---------------------------------------------------------------- one show: facts, map, form

type ShowView = {
  show: ShowDetail;
  seatButtons: Map<string, HTMLButtonElement>;
  picked: Set<string>;
  /** Re-reads the show and its map now (a booking of ours just changed seats). */
  refresh: () => void;
};
let current: ShowView | undefined;

function renderFacts(show: ShowDetail): void {
  $('#show-title').textContent = show.name;
  document.title = `${show.name} · Ticket Rush`;
  $('#show-facts').replaceChildren(
    h('time', { datetime: show.start_time }, formatDate(show.start_time)),
    ' · ',
    saleStateElement(show),
    ' · ',
    h('span', { id: 'availability' }, availability(show)),
    show.in_line ? ` · ${show.in_line} in line` : '',
  );
  const select = $<HTMLSelectElement>('#section');
  const chosen = select.value;
  select.replaceChildren(
    h('option', { value: '' }, 'Any section'),
    ...show.sections.map((section) =>
      h('option', { value: section.name }, `${section.name}: ${formatMoney(section.price_cents)}, ${section.available_seats} left`),
    ),
  );
  select.value = chosen;
  $('#section').closest('label')!.hidden = show.sections.length < 2;
}

const SEAT_WORDS: Record<string, string> = { AVAILABLE: 'available', HELD: 'held', BOOKED: 'booked' };

function renderPicked(view: ShowView): void {
  const picked = [...view.picked];
  const count = $<HTMLInputElement>('#seat-count');
  count.disabled = picked.length > 0;
  $<HTMLSelectElement>('#section').disabled = picked.length > 0;
  const hint = $('#picked');
  if (picked.length === 0) {
    hint.replaceChildren(view.show.available_seats === 0 ? 'Sold out: every seat is taken or held. Holds that lapse come back on sale.' : 'Best available seats, or pick seats on the map below.');
    return;
  }
  count.value = String(picked.length);
  hint.replaceChildren(
    `Picked: ${picked.join(', ')} `,
    h('button', { type: 'button', class: 'link', onclick: () => { view.picked.clear(); updateSeats(view, []); renderPicked(view); } }, 'Clear'),
  );
}

function seatButton(view: ShowView, seat: Seat): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'seat', 'data-label': seat.label }, String(seat.number));
  button.addEventListener('click', () => {
    if (view.picked.has(seat.label)) view.picked.delete(seat.label);
    else view.picked.add(seat.label);
    setSeat(view, button, button.dataset.status ?? 'AVAILABLE', button.dataset.price ?? '');
    renderPicked(view);
  });
  setSeat(view, button, seat.status, formatMoney(seat.price_cents));
  return button;
}

function setSeat(view: ShowView, button: HTMLButtonElement, status: string, price: string): void {
  const label = button.dataset.label!;
  if (status !== 'AVAILABLE' && view.picked.delete(label)) renderPicked(view);
  const picked = view.picked.has(label);
  button.dataset.status = status;
  button.dataset.price = price;
  button.disabled = status !== 'AVAILABLE';
  button.setAttribute('aria-pressed', String(picked));
  button.setAttribute('aria-label', `Seat ${label}, ${picked ? 'picked' : SEAT_WORDS[status] ?? status}, ${price}`);
  button.title = `${label} (${SEAT_WORDS[status] ?? status}, ${price})`;
}

/** Applies changed seats ({label, status}); an empty list just redraws the picked marks. */
function updateSeats(view: ShowView, changes: Array<{ label: string; status: string }>): void {
  for (const { label, status } of changes) {
    const button = view.seatButtons.get(label);
    if (button) setSeat(view, button, status, button.dataset.price ?? '');
  }
  if (changes.length === 0) for (const button of view.seatButtons.values()) setSeat(view, button, button.dataset.status!, button.dataset.price!);
}

function renderMap(view: ShowView, seats: Seat[]): void {
  const map = $('#seat-map');
  view.seatButtons.clear();
  const sections = view.show.sections.map((section) => {
    const rows = new Map<number, Seat[]>();
    for (const seat of seats) if (seat.section === section.name) rows.set(seat.row, [...(rows.get(seat.row) ?? []), seat]);
    return h(
      'figure',
      { class: 'section' },
      h('figcaption', {}, `${section.name} · ${formatMoney(section.price_cents)}`),
      ...[...rows.entries()]
        .sort(([a], [b]) => a - b)
        .map(([row, rowSeats]) =>
          h(
            'div',
            // General admission has no rows to keep straight: its one row wraps.
            { class: rowSeats[0]?.row_label ? 'row' : 'row wrap', role: 'group', 'aria-label': `${section.name} row ${rowSeats[0]?.row_label ?? row}` },
            rowSeats[0]?.row_label ? h('span', { class: 'row-label', 'aria-hidden': 'true' }, rowSeats[0].row_label) : null,
            ...rowSeats
              .sort((a, b) => a.number - b.number)
              .map((seat) => {
                const button = seatButton(view, seat);
                view.seatButtons.set(seat.label, button);
                return button;
              }),
          ),
        ),
    );
  });
  map.replaceChildren(h('p', { class: 'stage' }, 'Stage'), ...sections);
}

async function loadSeats(view: ShowView, redraw: boolean): Promise<void> {
  if (view.show.total_seats > MAP_SEAT_LIMIT) {
    if (redraw) $('#seat-map').replaceChildren(h('p', { class: 'hint' }, `This show has ${view.show.total_seats} seats, too many to draw here: choose a number of seats and we pick the best available.`));
    return;
  }
  // The map answers with an ETag and no-cache: the browser revalidates, an unchanged map is a 304.
  const { body } = await api<Seat[]>('GET', `/shows/${view.show.id}/seats`);
  if (redraw || view.seatButtons.size === 0) renderMap(view, body);
  else updateSeats(view, body);
}

async function openShow(id: string): Promise<void> {
  $('#shows').hidden = true;
  $('#show').hidden = false;
  $('#show-title').textContent = 'Loading…';
  $('#show-facts').replaceChildren();
  $('#seat-map').replaceChildren();
  // Nothing to book until the show is here: a Book pressed meanwhile would do nothing at all.
  showBookForm(false);
  let show: ShowDetail;
  try {
    show = (await api<ShowDetail>('GET', `/shows/${id}`)).body;
  } catch (error) {
    $('#show-title').textContent = 'Show not found';
    $('#book-form').hidden = true;
    showError(error instanceof ApiError && error.status === 404 ? new ApiError(404, 'SHOW_NOT_FOUND', 'not found') : error);
    return;
  }
  const view: ShowView = { show, seatButtons: new Map(), picked: new Set(), refresh: () => {} };
  current = view;
  renderFacts(show);
  renderPicked(view);
  await loadSeats(view, true).catch(showError);

  const capabilities = await apiCapabilities();
  $('#waitlist-field').hidden = !capabilities.waitlist;
  if (current !== view) return;
  const following = follow({
    stream: capabilities.showEvents ? `/shows/${id}/events` : null,
    events: {
      availability: (data) => {
        view.show = withAvailability(view.show, data);
        renderFacts(view.show);
        renderPicked(view);
      },
      seats: (data) => {
        const changed = seatChanges(data);
        if (changed) updateSeats(view, changed);
        else void loadSeats(view, false).catch(showError);
      },
    },
    poll: async () => {
      view.show = (await api<ShowDetail>('GET', `/shows/${id}`)).body;
      renderFacts(view.show);
      renderPicked(view);
      await loadSeats(view, false);
      return SHOW_REFRESH_MS;
    },
    onPollError: showError,
  });
  view.refresh = following.refresh;
  stopView.push(following.stop);

  const stored = readJson<StoredBooking>(STORED_BOOKING);
  if (stored?.show_id === id) followBooking(stored.id);
  else showBookForm(true);
}

/**
 * The labels and statuses in a `seats` event (`{ show_id, seats: [{ label, status }], reload }`),
 * or null when the map must be re-read: `reload` (the stream may have missed changes) or a shape
 * this page does not know.
 */
function seatChanges(data: unknown): Array<{ label: string; status: string }> | null {
  const event = data as { seats?: unknown; reload?: unknown } | null;
  if (event?.reload === true) return null;
  const list = event?.seats;
  if (!Array.isArray(list)) return null;
  const changes = list.filter((item): item is { label: string; status: string } => typeof item?.label === 'string' && typeof item?.status === 'string');
  return changes.length === list.length ? changes : null;
}

function showBookForm(visible: boolean): void {
  $('#book-form').hidden = !visible;
}

// ---------------------------------------------------------------- booking

async function book(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const view = current;
  if (!view) return;
  clearError();
  const email = $<HTMLInputElement>('#email').value.trim();
  const body: BookingRequest =
    view.picked.size > 0
      ? { show_id: view.show.id, customer_email: email, seats: [...view.picked] }
      : {
          show_id: view.show.id,
          customer_email: email,
          seat_count: Number($<HTMLInputElement>('#seat-count').value),
          ...($<HTMLSelectElement>('#section').value ? { section: $<HTMLSelectElement>('#section').value } : {}),
          ...($<HTMLInputElement>('#waitlist').checked && !$('#waitlist-field').hidden ? { waitlist: true } : {}),
        };
  // A retry of the same request (after a network error, a 503, a reload) sends the same key,
  // so the API answers with the booking the first attempt may have made instead of a second.
  const text = JSON.stringify(body);
  const pending = readJson<{ key: string; body: string }>(PENDING_BOOK);
  const key = pending?.body === text ? pending.key : newIdempotencyKey();
  writeJson(PENDING_BOOK, { key, body: text });
  const button = $<HTMLButtonElement>('#book');
  button.disabled = true;
  button.textContent = 'Booking…';
  try {
    const { body: accepted } = await api<BookingAccepted>('POST', '/booking', { body, headers: { 'idempotency-key': key } });
    localStorage.removeItem(PENDING_BOOK);
    writeJson(STORED_BOOKING, { id: accepted.id, show_id: view.show.id } satisfies StoredBooking);
    view.picked.clear();
    updateSeats(view, []);
    renderPicked(view);
    followBooking(accepted.id, {
      id: accepted.id,
      status: 'QUEUED',
      ...(accepted.phase !== null ? { phase: accepted.phase } : {}),
      ...(accepted.position !== null ? { position: accepted.position } : {}),
      updated_at: new Date().toISOString(),
    });
  } catch (error) {
    // A refusal of this body will not change on a retry: a corrected form gets a new key anyway.
    if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429 && error.status !== 408) localStorage.removeItem(PENDING_BOOK);
    showError(error);
  } finally {
    button.disabled = false;
    button.textContent = 'Book';
  }
}

const REASONS: Record<string, string> = {
  SOLD_OUT: 'Sold out: there are not enough seats left for this request.',
  SEATS_UNAVAILABLE: 'Someone else got one of those seats first. Pick other seats and book again.',
  LIMIT_EXCEEDED: 'You have reached the most seats one customer may book for this show.',
  PAYMENT_FAILED: 'Your card was declined, so the seats were released. Nothing was charged.',
  PROCESSING_ERROR: 'We could not process this request. Please book again.',
  REQUEST_REMOVED: 'This request was removed before it was decided. Please book again.',
};

const OUTLOOK: Record<string, string> = {
  GOOD: 'Good: the seats left cover everyone ahead of you and your request.',
  UNLIKELY: 'Unlikely: the people ahead of you asked for more seats than are left (held seats may still come back).',
};

function explanation(view: BookingStatus): string {
  switch (view.status) {
    case 'QUEUED':
      if (view.phase === 'WAITING_ROOM') return 'You are in the waiting room. When sales open, everyone who waited gets a place in line in a fair random draw.';
      if (view.paused) return 'The sale is paused: nothing is decided until it resumes. You keep your place in line.';
      return 'You are in line. Your place moves up as the requests ahead of you are decided.';
    case 'WAITLISTED':
      return view.waitlist_position !== undefined
        ? `Sold out for now. You are number ${view.waitlist_position} on the waiting list: if seats free up, they are held for you.`
        : 'Sold out for now. You are on the waiting list: if seats free up, they are held for you.';
    case 'HELD':
      return 'Your seats are held. Pay before the hold runs out.';
    case 'CONFIRMED':
      return 'Paid. Your seats are booked. Enjoy the show!';
    case 'FAILED':
      return REASONS[view.reason ?? ''] ?? `This booking failed (${view.reason ?? 'no reason given'}).`;
    case 'EXPIRED':
      return 'Your hold ran out before payment, so the seats were released.';
    case 'CANCELLED':
      return view.seats && view.seats.length > 0 ? 'This booking is cancelled: its seats were released.' : 'You left the line. Nothing was booked.';
    case 'REFUNDED':
      return 'This booking was refunded.';
    default:
      return '';
  }
}

const totals = new Map<string, number | null>();

function renderBooking(id: string, view: BookingStatus, actions: { settle: (action: 'confirm' | 'cancel') => void }): void {
  const panel = $('#booking');
  panel.hidden = false;
  const facts: Array<[string, Node | string]> = [];
  // The 202 names the phase but not the opening; the show does.
  const opensAt = view.sales_open_at ?? current?.show.sales_open_at;
  if (view.status === 'QUEUED' && view.phase === 'WAITING_ROOM' && opensAt) facts.push(['Sales open', countdown(opensAt, 'in ', 'now')]);
  // 0: a worker has the request now.
  if (view.position !== undefined) facts.push(['Place in line', view.position === 0 ? 'next: being decided now' : String(view.position)]);
  if (view.seats_ahead !== undefined) facts.push(['Seats ahead of you', String(view.seats_ahead)]);
  if (view.estimated_wait_seconds !== undefined) facts.push(['Estimated wait', `about ${formatDuration(view.estimated_wait_seconds)}`]);
  if (view.outlook) facts.push(['Outlook', OUTLOOK[view.outlook] ?? view.outlook]);
  if (view.seats && view.seats.length > 0) facts.push(['Seats', view.seats.join(', ')]);
  const total = totals.get(id);
  if (total !== undefined && total !== null && view.status !== 'FAILED') facts.push(['Total', formatMoney(total)]);
  if (view.status === 'HELD' && view.hold_expires_at) facts.push(['Pay within', countdown(view.hold_expires_at, '', 'the hold has run out', { class: 'hold-countdown' })]);

  const buttons: HTMLElement[] = [];
  if (view.status === 'HELD') {
    // The panel is drawn again when the total or a live update arrives; the buyer's tick must survive it.
    const declined = document.querySelector<HTMLInputElement>('#declined')?.checked ?? false;
    buttons.push(
      h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'declined', checked: declined }), ' Simulate a declined card'),
      h('button', { type: 'button', id: 'pay', onclick: () => actions.settle('confirm') }, 'Pay'),
      h('button', { type: 'button', class: 'secondary', onclick: () => actions.settle('cancel') }, 'Cancel'),
    );
  } else if (view.status === 'QUEUED' || view.status === 'WAITLISTED') {
    buttons.push(h('button', { type: 'button', class: 'secondary', onclick: () => actions.settle('cancel') }, 'Leave the line'));
  } else if (FINAL_STATUSES.has(view.status)) {
    buttons.push(h('button', { type: 'button', onclick: forgetBooking }, 'Book again'));
  }
  panel.replaceChildren(
    h('h2', {}, 'Your booking'),
    h('p', { class: 'status-line' }, 'Status: ', h('strong', { class: 'status-word', 'data-status': view.status }, view.status)),
    h('p', { class: 'explanation' }, explanation(view)),
    h('dl', { class: 'facts-list', hidden: facts.length === 0 }, ...facts.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    h('div', { class: 'actions', hidden: buttons.length === 0 }, ...buttons),
  );
}

function forgetBooking(): void {
  localStorage.removeItem(STORED_BOOKING);
  $('#booking').hidden = true;
  $('#booking').replaceChildren();
  clearError();
  showBookForm(true);
}

const fromBookingView = (booking: BookingView): BookingStatus => ({
  id: booking.id,
  status: booking.status,
  seats: booking.seats,
  ...(booking.reason ? { reason: booking.reason } : {}),
  ...(booking.hold_expires_at ? { hold_expires_at: booking.hold_expires_at } : {}),
  ...(booking.position !== undefined ? { position: booking.position } : {}),
  updated_at: booking.updated_at,
});

function followBooking(id: string, first?: BookingStatus): void {
  showBookForm(false);
  let last = '';
  let stop: () => void = () => {};
  let settling = false;
  let lastStatus = '';
  const update = (view: BookingStatus) => {
    const text = JSON.stringify(view);
    if (text === last) return;
    last = text;
    // A decision, payment or cancel changes seats: the map shows it now, not at its next poll.
    if (lastStatus && view.status !== lastStatus) current?.refresh();
    lastStatus = view.status;
    if (view.status === 'HELD' && !totals.has(id)) {
      totals.set(id, null);
      void api<BookingView>('GET', `/booking/${id}`).then(({ body }) => {
        totals.set(id, body.total_cents);
        last = '';
        update(view);
      }, () => totals.delete(id));
    }
    renderBooking(id, view, { settle });
    if (FINAL_STATUSES.has(view.status)) stop();
  };
  const settle = async (action: 'confirm' | 'cancel') => {
    if (settling) return;
    settling = true;
    clearError();
    const declined = document.querySelector<HTMLInputElement>('#declined')?.checked ?? false;
    for (const button of document.querySelectorAll<HTMLButtonElement>('#booking button')) button.disabled = true;
    try {
      const { body } = await api<BookingView>('POST', `/booking/${id}/${action}`, action === 'confirm' ? { body: { payment: declined ? 'fail' : 'success' } } : {});
      update(fromBookingView(body));
    } catch (error) {
      showError(error);
      for (const button of document.querySelectorAll<HTMLButtonElement>('#booking button')) button.disabled = false;
    } finally {
      settling = false;
    }
  };
  if (first) update(first);
  void apiCapabilities().then((capabilities) => {
    if (FINAL_STATUSES.has(JSON.parse(last || '{}').status ?? '')) return;
    ({ stop } = follow({
      stream: capabilities.bookingEvents ? `/booking/${id}/events` : null,
      events: { status: (data) => update(data as BookingStatus) },
      poll: async () => {
        // Prefer: wait lets an API that supports it answer once the request is decided
        // (RFC 7240); one that does not answers at once, and Retry-After paces the next poll.
        const answer = await api<BookingStatus>('GET', `/booking/${id}/status`, { headers: { prefer: 'wait=20' } });
        update(answer.body);
        if (answer.body.status !== 'QUEUED') return HELD_REFRESH_MS;
        if (answer.headers.has('preference-applied')) return 0;
        return Math.max(1, Number(answer.headers.get('retry-after')) || 1) * 1_000;
      },
      onPollError: (error) => {
        // The API no longer knows it (a reset database, a removed show): start afresh.
        if (error instanceof ApiError && error.status === 404) {
          stop();
          forgetBooking();
        } else showError(error);
      },
    }));
    stopView.push(() => stop());
  });
}

// ---------------------------------------------------------------- start

function route(): void {
  leaveView();
  clearError();
  current = undefined;
  $('#booking').hidden = true;
  const match = /^#\/shows\/([0-9a-fA-F-]{36})$/.exec(location.hash);
  if (match) void openShow(match[1]!.toLowerCase());
  else openList();
}

$<HTMLFormElement>('#book-form').addEventListener('submit', (event) => void book(event));
window.addEventListener('hashchange', route);
const stored = readJson<StoredBooking>(STORED_BOOKING);
// A reload finds the booking: back to its show, where its panel picks up where it stands.
if (stored && (location.hash === '' || location.hash === '#/')) history.replaceState(null, '', `#/shows/${stored.show_id}`);
route();
startCountdowns();
