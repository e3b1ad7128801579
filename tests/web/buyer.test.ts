import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { launchChromium, openPage, PHONE, screenshot, type WatchedPage } from '../support/browser.js';
import { openListeningTestApi } from '../support/context.js';
import { call, createShow, waitForDecision } from '../support/http.js';
import { bookingBody } from '../../services/api/schemas.js';

/**
 * The buyer's page end to end in real Chromium, against the real API (listening on a port),
 * a real worker, Postgres and Redis: best available to CONFIRMED, seats picked on the map, a
 * declined card, a sold-out show, and a reload finding the booking again. Every test fails
 * on any console error or uncaught exception in the page.
 */

const { ctx, api, baseUrl } = await openListeningTestApi({ HOLD_SECONDS: '300' });
await ctx.startWorker();
const browser: Browser = await launchChromium();
let opened: WatchedPage | undefined;

/** Console lines a test provokes on purpose (the browser logs every 4xx answer and every aborted request). */
let expectedErrors: RegExp[] = [];

afterEach(async () => {
  const errors = (opened?.errors ?? []).filter((line) => !expectedErrors.some((expected) => expected.test(line)));
  expectedErrors = [];
  await opened?.close();
  opened = undefined;
  expect(errors, "the page logged errors").toEqual([]);
});

afterAll(async () => {
  await browser.close();
});

async function open(path = '/'): Promise<Page> {
  opened = await openPage(browser, baseUrl, PHONE);
  await opened.page.goto(path);
  return opened.page;
}

/** How long the page may take to show a change: a poll's Retry-After, a stream's event, a loaded runner. */
const LIVE = { timeout: 20_000, interval: 100 };

const panel = (page: Page) => page.getByRole('status').filter({ hasText: 'Your booking' });

async function reservedShow(name: string) {
  return createShow(api.app, {
    name,
    sections: [
      { name: 'VIP', rows: 2, seats_per_row: 4, price_cents: 15_000 },
      { name: 'Stalls', rows: 3, seats_per_row: 6, price_cents: 6_000 },
    ],
  });
}

/** The booking the page made, read back through the admin API (the truth, not the page). */
async function bookingsOf(showId: string) {
  const reply = await call(api.app, 'GET', `/admin/bookings?show_id=${showId}`, { admin: true });
  return reply.body.bookings as Array<{ id: string; status: string; seats: string[]; reason: string | null; customer_email: string }>;
}

describe("the buyer's page", () => {
  it('books the best available seats: QUEUED → HELD → Pay → CONFIRMED, and a reload finds the booking', async () => {
    const show = await reservedShow('Opening night');
    const page = await open();
    await screenshot(page, '01-show-list');
    const card = page.getByRole('link', { name: /Opening night/ });
    await expect.poll(() => card.textContent(), LIVE).toContain('26 of 26 seats available');
    expect(await card.textContent()).toContain('On sale');
    await card.click();
    await page.getByLabel('Seats', { exact: true }).fill('2');
    await page.getByLabel('Email').fill('ada@example.com');
    await screenshot(page, '02-show-and-seat-map');
    await page.getByRole('button', { name: 'Book', exact: true }).click();

    await expect.poll(() => panel(page).textContent(), LIVE).toContain('HELD');
    const held = await panel(page).textContent();
    expect(held).toContain('VIP-A-1, VIP-A-2');
    expect(held).toMatch(/Pay within\s*\d+ min/);
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('€300.00');
    await screenshot(page, '03-held');
    const [booking] = await bookingsOf(show.id);
    expect(booking).toMatchObject({ status: 'HELD', customer_email: 'ada@example.com', seats: ['VIP-A-1', 'VIP-A-2'] });

    await page.getByRole('button', { name: 'Pay', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('CONFIRMED');
    await screenshot(page, '04-confirmed');
    expect((await bookingsOf(show.id))[0]).toMatchObject({ id: booking!.id, status: 'CONFIRMED' });
    // The map follows the booking: the two seats are booked now.
    await expect.poll(() => page.getByRole('button', { name: /^Seat VIP-A-1,/ }).getAttribute('data-status'), LIVE).toBe('BOOKED');

    await page.reload();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('CONFIRMED');
    expect(page.url()).toContain(`#/shows/${show.id}`);
    await page.getByRole('button', { name: 'Book again' }).click();
    await expect(page.getByRole('button', { name: 'Book', exact: true }).isVisible()).resolves.toBe(true);
  });

  it('shows the Book form only once the show has loaded', async () => {
    const show = await reservedShow('Late loader');
    opened = await openPage(browser, baseUrl, PHONE);
    const { page } = opened;
    // Hold the show's answer back, as a slow network or a busy API would.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    await page.route(`**/shows/${show.id}`, async (route) => {
      await released;
      await route.continue();
    });
    await page.goto(`/#/shows/${show.id}`);
    await expect.poll(() => page.locator('#show-title').textContent(), LIVE).toBe('Loading…');
    expect(await page.locator('#book-form').isVisible()).toBe(false);
    release();
    await expect.poll(() => page.locator('#show-title').textContent(), LIVE).toBe('Late loader');
    await expect.poll(() => page.getByRole('button', { name: 'Book', exact: true }).isVisible(), LIVE).toBe(true);
  });

  it('books two seats picked on the map, then cancels them', async () => {
    const show = await reservedShow('Matinee');
    const page = await open(`/#/shows/${show.id}`);
    await page.getByRole('button', { name: /^Seat Stalls-B-3,/ }).click();
    await page.getByRole('button', { name: /^Seat Stalls-B-4,/ }).click();
    await expect.poll(() => page.locator('#picked').textContent(), LIVE).toContain('Picked: Stalls-B-3, Stalls-B-4');
    expect(await page.getByRole('button', { name: /^Seat Stalls-B-3,/ }).getAttribute('aria-pressed')).toBe('true');
    await screenshot(page, '05-seats-picked');
    await page.getByLabel('Email').fill('grace@example.com');
    await page.getByRole('button', { name: 'Book', exact: true }).click();

    await expect.poll(() => panel(page).textContent(), LIVE).toContain('HELD');
    expect(await panel(page).textContent()).toContain('Stalls-B-3, Stalls-B-4');
    expect((await bookingsOf(show.id))[0]).toMatchObject({ status: 'HELD', seats: ['Stalls-B-3', 'Stalls-B-4'] });
    await expect.poll(() => page.getByRole('button', { name: /^Seat Stalls-B-3,/ }).getAttribute('data-status'), LIVE).toBe('HELD');

    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('CANCELLED');
    expect((await bookingsOf(show.id))[0]).toMatchObject({ status: 'CANCELLED' });
    await expect.poll(() => page.getByRole('button', { name: /^Seat Stalls-B-3,/ }).getAttribute('data-status'), LIVE).toBe('AVAILABLE');
  });

  it('a declined card fails the booking and says so', async () => {
    const show = await reservedShow('Declined');
    const page = await open(`/#/shows/${show.id}`);
    await page.getByLabel('Seats', { exact: true }).fill('1');
    await page.getByLabel('Section').selectOption('Stalls');
    await page.getByLabel('Email').fill('linus@example.com');
    // Hold back the booking's total until the card is ticked: its arrival draws the panel again,
    // which once lost the tick and paid with the card the buyer had declined.
    let releaseTotal = () => {};
    const totalHeld = new Promise<void>((resolve) => (releaseTotal = resolve));
    await page.route(/\/booking\/[^/]+$/, async (route) => {
      if (route.request().method() === 'GET') await totalHeld;
      await route.continue();
    });
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('HELD');
    expect(await panel(page).textContent()).toContain('Stalls-A-1');

    await page.getByLabel('Simulate a declined card').check();
    releaseTotal();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('Total');
    expect(await page.getByLabel('Simulate a declined card').isChecked()).toBe(true);
    await page.getByRole('button', { name: 'Pay', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('FAILED');
    expect(await panel(page).textContent()).toContain('Your card was declined');
    await screenshot(page, '06-payment-declined');
    expect((await bookingsOf(show.id))[0]).toMatchObject({ status: 'FAILED', reason: 'PAYMENT_FAILED' });
  });

  it('a scheduled sale counts down to its waiting room and its opening', async () => {
    const inMinutes = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString();
    const show = await createShow(api.app, { name: 'Next week', total_seats: 50, waiting_room_opens_at: inMinutes(90), sales_open_at: inMinutes(150) });
    const page = await open();
    const card = page.getByRole('link', { name: /Next week/ });
    await expect.poll(() => card.textContent(), LIVE).toMatch(/Waiting room opens in 1 h (29|30) min/);
    await card.click();
    await expect.poll(() => page.locator('#show-facts').textContent(), LIVE).toMatch(/Waiting room opens in 1 h (29|30) min/);
    expect(page.url()).toContain(show.id);
    await screenshot(page, '15-scheduled-sale');
  });

  it('waits in the waiting room with a countdown to the opening, and leaves the line', async () => {
    const opensAt = new Date(Date.now() + 10 * 60_000).toISOString();
    const show = await createShow(api.app, { name: 'Big tour', total_seats: 40, sales_open_at: opensAt });
    const page = await open(`/#/shows/${show.id}`);
    await expect.poll(() => page.locator('#show-facts').textContent(), LIVE).toMatch(/Waiting room open: sales open in (9|10) min/);
    await page.getByLabel('Seats', { exact: true }).fill('2');
    await page.getByLabel('Email').fill('early@example.com');
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toMatch(/Sales open\s*in (9|10) min/);
    const waiting = await panel(page).textContent();
    expect(waiting).toContain('QUEUED');
    expect(waiting).toContain('You are in the waiting room');
    await screenshot(page, '16-waiting-room');

    await page.getByRole('button', { name: 'Leave the line' }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('CANCELLED');
    expect(await panel(page).textContent()).toContain('You left the line. Nothing was booked.');
    expect(await bookingsOf(show.id)).toEqual([expect.objectContaining({ status: 'CANCELLED', seats: [] })]);
  });

  it('says when the sale is paused, keeps the place, and gets the seats once it resumes', async () => {
    const show = await reservedShow('Paused sale');
    expect((await call(api.app, 'POST', `/admin/shows/${show.id}/pause`, { admin: true, body: {} })).status).toBe(200);
    const page = await open(`/#/shows/${show.id}`);
    await expect.poll(() => page.locator('#show-facts').textContent(), LIVE).toContain('Sale paused');
    await page.getByLabel('Seats', { exact: true }).fill('2');
    await page.getByLabel('Email').fill('patient@example.com');
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('The sale is paused: nothing is decided until it resumes.');
    expect(await panel(page).textContent()).toContain('QUEUED');
    await screenshot(page, '17-sale-paused');

    expect((await call(api.app, 'POST', `/admin/shows/${show.id}/resume`, { admin: true, body: {} })).status).toBe(200);
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('HELD');
    await expect.poll(() => page.locator('#show-facts').textContent(), LIVE).toContain('On sale');
  });

  it('joins the waiting list of a sold-out show and gets the freed seat as an offer', async (test) => {
    // Needs `waitlist` on POST /booking (issue 15). Runs by itself once the body schema has it;
    // until then it is reported as skipped, not passed.
    if (!('waitlist' in bookingBody(ctx.config).shape)) {
      test.skip('POST /booking takes no waitlist yet (issue 15)');
      return;
    }
    const show = await createShow(api.app, { name: 'Second chance', total_seats: 1 });
    const first = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'holder@example.com', seat_count: 1 } });
    await waitForDecision(api.app, first.body.id);
    const page = await open(`/#/shows/${show.id}`);
    await page.getByLabel('Seats', { exact: true }).fill('1');
    await page.getByLabel('Email').fill('hopeful@example.com');
    await page.getByLabel('Join the waiting list if it is sold out').check();
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('WAITLISTED');
    expect(await panel(page).textContent()).toContain('number 1 on the waiting list');
    await screenshot(page, '18-waitlisted');
    await call(api.app, 'POST', `/booking/${first.body.id}/cancel`);
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('HELD');
  });

  it("a sold-out show says so in the list, on its page, and in the booking's answer", async () => {
    const show = await createShow(api.app, { name: 'Tiny gig', total_seats: 1, price_cents: 2_500 });
    const taken = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'first@example.com', seat_count: 1 } });
    await waitForDecision(api.app, taken.body.id);
    await call(api.app, 'POST', `/booking/${taken.body.id}/confirm`, { body: { payment: 'success' } });

    const page = await open();
    const card = page.getByRole('link', { name: /Tiny gig/ });
    await expect.poll(() => card.textContent(), LIVE).toContain('Sold out');
    await card.click();
    await expect.poll(() => page.locator('#show-facts').textContent(), LIVE).toContain('Sold out');
    expect(await page.locator('#picked').textContent()).toContain('Sold out');
    await page.getByLabel('Email').fill('late@example.com');
    await page.getByLabel('Seats', { exact: true }).fill('1');
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('FAILED');
    expect(await panel(page).textContent()).toContain('Sold out: there are not enough seats left');
    await screenshot(page, '07-sold-out');
  });

  it('shows a refused request in plain words, and a retried Book reuses its Idempotency-Key', async () => {
    const show = await reservedShow('Retry');
    const page = await open(`/#/shows/${show.id}`);
    const keys: string[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.url().endsWith('/booking')) keys.push(request.headers()['idempotency-key'] ?? '');
    });
    // The first attempt never reaches the API (the network drops it); the buyer presses Book again.
    let dropped = false;
    await page.route('**/booking', (route) => (dropped ? route.continue() : ((dropped = true), route.abort('internetdisconnected'))));
    await page.getByLabel('Seats', { exact: true }).fill('1');
    await page.getByLabel('Email').fill('retry@example.com');
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), LIVE).toContain('Could not reach Ticket Rush');
    await screenshot(page, '08-network-error');
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('HELD');
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^web-[0-9a-f]{32}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(await bookingsOf(show.id)).toHaveLength(1);
    // The failed fetch is the browser's own console line, not the page's: it is what this test provokes.
    expectedErrors = [/ERR_INTERNET_DISCONNECTED/];
  });

  it("names the field and the problem of a refused request in the form's words", async () => {
    const show = await reservedShow('Typo');
    const page = await open(`/#/shows/${show.id}`);
    await page.getByLabel('Seats', { exact: true }).fill('1');
    await page.getByLabel('Email').fill('not-an-email');
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    expectedErrors = [/status of 400 \(Bad Request\)/];
    await expect.poll(() => page.getByRole('alert').textContent(), LIVE).toBe('Please check: Email must be an email address.');
    expect(await page.getByRole('button', { name: 'Book', exact: true }).isVisible()).toBe(true);
    expect(await bookingsOf(show.id)).toEqual([]);
  });

  it('keeps following a booking by polling while its event stream is down', async () => {
    const show = await reservedShow('Flaky network');
    const page = await open(`/#/shows/${show.id}`);
    const polls: string[] = [];
    page.on('request', (request) => {
      if (/\/booking\/[^/]+\/status$/.test(new URL(request.url()).pathname)) polls.push(request.url());
    });
    // Every stream is cut before it reaches the API (a proxy that drops them, a flaky network).
    await page.route(/\/(booking|shows)\/[^/]+\/events$/, (route) => route.abort('connectionreset'));
    expectedErrors = [/ERR_CONNECTION_RESET/];
    await page.getByLabel('Seats', { exact: true }).fill('1');
    await page.getByLabel('Email').fill('flaky@example.com');
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('HELD');
    await page.getByRole('button', { name: 'Pay', exact: true }).click();
    await expect.poll(() => panel(page).textContent(), LIVE).toContain('CONFIRMED');
    expect(polls.length).toBeGreaterThan(0);
  });
});
