import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { launchChromium, openPage, PHONE, screenshot, type WatchedPage } from '../support/browser.js';
import { openListeningTestApi } from '../support/context.js';
import { call, createShow, waitForDecision } from '../support/http.js';
import { routeTable } from '../support/route-table.js';

/**
 * The buyer's live panel while the line moves: a small burst queued ahead of the buyer with no
 * worker running, then a worker that decides part of the line and stops, then another that
 * decides the rest. The panel must show the place in line, a smaller place once the line has
 * moved (without a reload or a click), and the decision, each as it happens.
 */

const { ctx, api, baseUrl } = await openListeningTestApi();
const browser: Browser = await launchChromium();
let opened: WatchedPage | undefined;

const LIVE = { timeout: 30_000, interval: 100 };
const BURST = 20;

afterAll(async () => {
  await opened?.close();
  await browser.close();
});

describe("the buyer's place in line", () => {
  it('moves live during a small burst, then the decision arrives', async () => {
    const show = await createShow(api.app, { name: 'Rush hour', total_seats: 100, price_cents: 4_000 });
    // One request per event-loop turn, so each is its own batch job and the line drains job by job.
    const burst: string[] = [];
    for (let index = 0; index < BURST; index += 1) {
      const reply = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: `fan${index}@example.com`, seat_count: 1 } });
      expect(reply.status).toBe(202);
      burst.push(reply.body.id);
    }

    opened = await openPage(browser, baseUrl, PHONE);
    const { page } = opened;
    const requested: string[] = [];
    page.on('request', (request) => requested.push(new URL(request.url()).pathname));
    await page.goto(`/#/shows/${show.id}`);
    await page.getByLabel('Seats', { exact: true }).fill('1');
    await page.getByLabel('Email').fill('late-fan@example.com');
    await page.getByRole('button', { name: 'Book', exact: true }).click();
    const panel = page.getByRole('status').filter({ hasText: 'Your booking' });
    const place = async () => Number(/Place in line\s*(\d+)/.exec((await panel.textContent()) ?? '')?.[1] ?? NaN);
    await expect.poll(place, LIVE).toBe(BURST + 1);
    expect(await panel.textContent()).toContain('QUEUED');
    // Seats ahead and the outlook (issue 13, "telling buyers where they stand"): the burst's
    // seats are all ahead, in the same show, and 100 seats cover them and the buyer's one.
    await expect.poll(async () => (await panel.textContent()) ?? '', LIVE).toMatch(new RegExp(`Seats ahead of you\\s*${BURST}(?!\\d)`));
    expect(await panel.textContent()).toContain('Good: the seats left cover everyone ahead of you');
    await screenshot(page, '09-in-line');

    // A worker takes part of the line and stops; the page sees the line move by itself.
    const firstWorker = await ctx.startWorker({ WORKER_CONCURRENCY: '1' });
    await waitForDecision(api.app, burst[0]!);
    await firstWorker.close();
    await expect.poll(place, LIVE).toBeLessThan(BURST + 1);
    expect(await panel.textContent()).toContain('QUEUED');
    await screenshot(page, '10-line-moved');

    await ctx.startWorker();
    await expect.poll(() => panel.textContent(), LIVE).toContain('HELD');
    expect(await panel.textContent()).toMatch(/Seats\s*\d+/);
    await screenshot(page, '11-decided-after-the-line');

    // How the panel kept up: the booking's event stream where the API has one, else polls of its status.
    const stored = JSON.parse(String(await page.evaluate('localStorage.getItem("ticket-rush:booking")'))) as { id: string };
    const streams = routeTable(api.app).some((route) => route.method === 'GET' && route.path === '/booking/:id/events');
    if (streams) expect(requested).toContain(`/booking/${stored.id}/events`);
    else expect(requested.filter((path) => path === `/booking/${stored.id}/status`).length).toBeGreaterThan(1);
    expect(opened.errors, 'the page logged errors').toEqual([]);
  });
});
