import { ApiError, api, apiCapabilities, withAvailability, type BookingView, type ShowDetail, type ShowSummary } from './api.js';
import { $, formatDate, h, startCountdowns } from './dom.js';
import { follow } from './live.js';

/**
 * The admin page: the token typed in and kept for this tab only, creating a show with its
 * sections and sale schedule, the shows with pause and resume, and one show watched live
 * (its line, its sections' counts, its latest outcomes).
 */

const TOKEN = 'ticket-rush:admin-token';
const SHOWS_REFRESH_MS = 5_000;
const WATCH_REFRESH_MS = 2_000;

const token = () => sessionStorage.getItem(TOKEN);

function showError(error: unknown): void {
  const box = $('#error');
  box.textContent = error instanceof ApiError ? error.plain : 'Something went wrong on this page. Reload it to try again.';
  box.hidden = false;
  if (error instanceof ApiError && error.status === 401) signOut();
}
function clearError(): void {
  $('#error').hidden = true;
}

function adminApi<T>(method: 'GET' | 'POST', path: string, body?: unknown) {
  return api<T>(method, path, { headers: { authorization: `Bearer ${token() ?? ''}` }, ...(body !== undefined ? { body } : {}) });
}

// ---------------------------------------------------------------- token

let stopShows: (() => void) | undefined;
let stopWatch: (() => void) | undefined;

function signIn(): void {
  $('#token-form').hidden = true;
  $('#token-set').hidden = false;
  $('#signed-in').hidden = false;
  stopShows?.();
  stopShows = follow({ stream: null, events: {}, poll: async () => (await refreshShows(), SHOWS_REFRESH_MS), onPollError: showError }).stop;
}

function signOut(): void {
  sessionStorage.removeItem(TOKEN);
  stopShows?.();
  stopWatch?.();
  $('#token-form').hidden = false;
  $('#token-set').hidden = true;
  $('#signed-in').hidden = true;
}

// ---------------------------------------------------------------- create a show

function addSectionRow(defaults: { name: string; rows: number; seats: number; price: number }): void {
  const index = $('#sections').children.length + 1;
  const row = h(
    'div',
    { class: 'section-row' },
    h('label', {}, `Section ${index} name`, h('input', { name: 'section-name', value: defaults.name, required: true })),
    h('label', {}, 'Rows', h('input', { name: 'section-rows', type: 'number', min: 1, value: defaults.rows, inputmode: 'numeric' })),
    h('label', {}, 'Seats per row', h('input', { name: 'section-seats', type: 'number', min: 1, value: defaults.seats, inputmode: 'numeric' })),
    h('label', {}, 'Price', h('input', { name: 'section-price', type: 'number', min: 0, step: '0.01', value: defaults.price.toFixed(2), inputmode: 'decimal' })),
    h('button', { type: 'button', class: 'secondary', onclick: () => row.remove() }, `Remove section ${index}`),
  );
  $('#sections').append(row);
}

/** A datetime-local value (the browser's zone) as an ISO instant, or undefined when empty. */
const instant = (selector: string) => {
  const value = $<HTMLInputElement>(selector).value;
  return value ? new Date(value).toISOString() : undefined;
};
const whole = (selector: string) => {
  const value = $<HTMLInputElement>(selector).value;
  return value === '' ? undefined : Number(value);
};

async function createShow(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  clearError();
  const sections = [...$('#sections').children].map((row) => {
    const field = (name: string) => $<HTMLInputElement>(`[name="${name}"]`, row).value;
    return {
      name: field('section-name').trim(),
      rows: Number(field('section-rows')),
      seats_per_row: Number(field('section-seats')),
      price_cents: Math.round(Number(field('section-price')) * 100),
    };
  });
  // Schedule fields go only when filled: an API without a schedule refuses unknown fields.
  const schedule = Object.fromEntries(
    Object.entries({
      waiting_room_opens_at: instant('#waiting-room-opens-at'),
      sales_open_at: instant('#sales-open-at'),
      sales_close_at: instant('#sales-close-at'),
      hold_seconds: whole('#hold-seconds'),
      max_seats_per_customer: whole('#max-seats'),
    }).filter(([, value]) => value !== undefined),
  );
  const startTime = instant('#start-time');
  const body = { name: $<HTMLInputElement>('#show-name').value, ...(startTime ? { start_time: startTime } : {}), sections, ...schedule };
  const button = $<HTMLButtonElement>('#create');
  button.disabled = true;
  try {
    const { body: show } = await adminApi<ShowDetail>('POST', '/admin/shows', body);
    $('#created').textContent = `Created "${show.name}" with ${show.total_seats} seats.`;
    await refreshShows();
    await watch(show.id);
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- shows, pause and resume

const STATE_WORDS: Record<string, string> = {
  SCHEDULED: 'Scheduled',
  WAITING_ROOM: 'Waiting room',
  ON_SALE: 'On sale',
  PAUSED: 'Paused',
  SOLD_OUT: 'Sold out',
  CLOSED: 'Closed',
};
const stateWords = (show: ShowSummary) => (show.sales_state ? (STATE_WORDS[show.sales_state] ?? show.sales_state) : show.available_seats === 0 ? 'Sold out' : 'On sale');

async function refreshShows(): Promise<void> {
  const [{ body }, capabilities] = await Promise.all([adminApi<{ shows: ShowSummary[] }>('GET', '/admin/shows?limit=100'), apiCapabilities()]);
  $('#pause-note').hidden = capabilities.pause;
  $('#schedule-note').hidden = capabilities.schedule;
  $<HTMLFieldSetElement>('#schedule').disabled = !capabilities.schedule;
  $('#show-rows').replaceChildren(
    ...body.shows.map((show) =>
      h(
        'tr',
        { 'data-show': show.id },
        h('td', {}, show.name),
        h('td', {}, formatDate(show.start_time)),
        h('td', { class: 'sale-state' }, stateWords(show)),
        h('td', {}, `${show.available_seats} / ${show.total_seats}`),
        h('td', {}, show.in_line === null ? '–' : String(show.in_line)),
        h(
          'td',
          { class: 'actions' },
          h('button', { type: 'button', class: 'secondary', 'aria-label': `Watch ${show.name}`, onclick: () => void watch(show.id) }, 'Watch'),
          capabilities.pause && show.sales_state !== 'PAUSED'
            ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Pause ${show.name}`, onclick: () => void saleAction(show.id, 'pause') }, 'Pause')
            : null,
          capabilities.pause && show.sales_state === 'PAUSED'
            ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Resume ${show.name}`, onclick: () => void saleAction(show.id, 'resume') }, 'Resume')
            : null,
        ),
      ),
    ),
  );
}

async function saleAction(id: string, action: 'pause' | 'resume'): Promise<void> {
  clearError();
  try {
    await adminApi<ShowDetail>('POST', `/admin/shows/${id}/${action}`, {});
    await refreshShows();
  } catch (error) {
    showError(error);
  }
}

// ---------------------------------------------------------------- watching one show

function renderWatch(show: ShowDetail, bookings: BookingView[]): void {
  $('#watch-title').textContent = `Watching ${show.name}`;
  const tally = new Map<string, number>();
  for (const booking of bookings) {
    const outcome = booking.reason ? `${booking.status} (${booking.reason})` : booking.status;
    tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
  }
  $('#watch-body').replaceChildren(
    h(
      'p',
      {},
      `Sale: ${stateWords(show)} · `,
      h('strong', { class: 'in-line' }, show.in_line === null ? 'line length unknown right now' : `${show.in_line} in line`),
      ` · ${show.available_seats} of ${show.total_seats} seats available`,
    ),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        {},
        h('thead', {}, h('tr', {}, h('th', {}, 'Section'), h('th', {}, 'Available'), h('th', {}, 'Held'), h('th', {}, 'Booked'))),
        h(
          'tbody',
          {},
          ...show.sections.map((section) =>
            h('tr', {}, h('td', {}, section.name), h('td', {}, String(section.available_seats)), h('td', {}, String(section.held_seats)), h('td', {}, String(section.booked_seats))),
          ),
        ),
      ),
    ),
    h('h3', {}, 'Latest outcomes'),
    bookings.length === 0
      ? h('p', { class: 'hint' }, 'No booking decided yet.')
      : h('p', { class: 'outcomes' }, [...tally.entries()].map(([outcome, count]) => `${count} ${outcome}`).join(' · '), ` (latest ${bookings.length})`),
  );
}

/**
 * Follows one show: its line and counts through the show's event stream where the API has one
 * (polled otherwise), and its latest decided bookings, which no stream carries, by polling.
 */
let watching: string | undefined;
async function watch(id: string): Promise<void> {
  stopWatch?.();
  watching = id;
  $('#watch').hidden = false;
  let show: ShowDetail;
  try {
    show = (await adminApi<ShowDetail>('GET', `/admin/shows/${id}`)).body;
  } catch (error) {
    showError(error);
    return;
  }
  let bookings: BookingView[] = [];
  renderWatch(show, bookings);
  const capabilities = await apiCapabilities();
  // Another show was picked meanwhile: it is the one to follow.
  if (watching !== id) return;
  const counts = follow({
    stream: capabilities.showEvents ? `/shows/${id}/events` : null,
    events: {
      availability: (data) => {
        show = withAvailability(show, data);
        renderWatch(show, bookings);
      },
    },
    poll: async () => {
      show = (await adminApi<ShowDetail>('GET', `/admin/shows/${id}`)).body;
      renderWatch(show, bookings);
      return WATCH_REFRESH_MS;
    },
    onPollError: showError,
  });
  const outcomes = follow({
    stream: null,
    events: {},
    poll: async () => {
      bookings = (await adminApi<{ bookings: BookingView[] }>('GET', `/admin/bookings?show_id=${id}&limit=50`)).body.bookings;
      renderWatch(show, bookings);
      return WATCH_REFRESH_MS;
    },
    onPollError: showError,
  });
  stopWatch = () => {
    counts.stop();
    outcomes.stop();
  };
}

// ---------------------------------------------------------------- start

$<HTMLFormElement>('#token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  clearError();
  const value = $<HTMLInputElement>('#token').value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN, value);
  $<HTMLInputElement>('#token').value = '';
  signIn();
});
$('#forget-token').addEventListener('click', signOut);
$<HTMLFormElement>('#create-form').addEventListener('submit', (event) => void createShow(event));
$('#add-section').addEventListener('click', () => addSectionRow({ name: `Section ${$('#sections').children.length + 1}`, rows: 2, seats: 8, price: 40 }));
addSectionRow({ name: 'Stalls', rows: 4, seats: 10, price: 60 });
if (token()) signIn();
startCountdowns();
