import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { launchChromium, openPage, screenshot, type WatchedPage } from '../support/browser.js';
import { openListeningTestApi, TEST_ADMIN_TOKEN } from '../support/context.js';
import { call, waitForDecision } from '../support/http.js';
import { routeTable } from '../support/route-table.js';

/**
 * The admin page in real Chromium against the real API and a worker: the token typed in and
 * kept for the tab only, a show created with sections through the form, watched live while
 * bookings are decided, and its sale paused and resumed.
 */

const { ctx, api, baseUrl } = await openListeningTestApi();
await ctx.startWorker();
const browser: Browser = await launchChromium();
let opened: WatchedPage | undefined;
/** Console lines a test provokes on purpose (the browser logs every 4xx answer). */
let expectedErrors: RegExp[] = [];

const LIVE = { timeout: 20_000, interval: 100 };

afterEach(async () => {
  const errors = (opened?.errors ?? []).filter((line) => !expectedErrors.some((expected) => expected.test(line)));
  expectedErrors = [];
  await opened?.close();
  opened = undefined;
  expect(errors, 'the page logged errors').toEqual([]);
});

afterAll(async () => {
  await browser.close();
});

async function signedIn(): Promise<Page> {
  opened = await openPage(browser, baseUrl, { viewport: { width: 1100, height: 900 } });
  const { page } = opened;
  await page.goto('/admin');
  await page.getByLabel('Admin token').fill(TEST_ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Use token' }).click();
  await expect.poll(() => page.getByText('Token set for this tab').isVisible(), LIVE).toBe(true);
  return page;
}

async function createThroughForm(page: Page, name: string): Promise<{ id: string; sections: Array<{ name: string; total_seats: number }> }> {
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Start time').fill('2031-05-01T20:00');
  await page.getByLabel('Section 1 name').fill('Balcony');
  await page.getByLabel('Rows').first().fill('2');
  await page.getByLabel('Seats per row').first().fill('5');
  await page.getByLabel('Price').first().fill('35.50');
  await page.getByRole('button', { name: 'Add section' }).click();
  await page.getByLabel('Section 2 name').fill('Floor');
  await page.getByRole('button', { name: 'Create show' }).click();
  await expect.poll(() => page.locator('#created').textContent(), LIVE).toContain(`Created "${name}"`);
  const list = await call(api.app, 'GET', '/admin/shows', { admin: true });
  const summary = (list.body.shows as Array<{ id: string; name: string }>).find((show) => show.name === name);
  expect(summary, `${name} was created`).toBeDefined();
  return (await call(api.app, 'GET', `/admin/shows/${summary!.id}`, { admin: true })).body;
}

describe('the admin page', () => {
  it('refuses a wrong token in plain words and keeps a right one for this tab only', async () => {
    opened = await openPage(browser, baseUrl);
    const { page } = opened;
    await page.goto('/admin');
    await page.getByLabel('Admin token').fill('not-the-admin-token');
    await page.getByRole('button', { name: 'Use token' }).click();
    expectedErrors = [/401 \(Unauthorized\)/];
    await expect.poll(() => page.getByRole('alert').textContent(), LIVE).toContain('The admin token is missing or wrong.');
    expect(await page.getByLabel('Admin token').isVisible()).toBe(true);

    await page.getByLabel('Admin token').fill(TEST_ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await expect.poll(() => page.getByText('Token set for this tab').isVisible(), LIVE).toBe(true);
    // Runs in the page, where sessionStorage and localStorage exist (this file's types know Node only).
    const stored = await page.evaluate('[sessionStorage.getItem("ticket-rush:admin-token"), localStorage.length]');
    expect(stored).toEqual([TEST_ADMIN_TOKEN, 0]);
    // A new tab (a new session) has no token.
    const other = await page.context().newPage();
    await other.goto('/admin');
    expect(await other.getByLabel('Admin token').isVisible()).toBe(true);
    await other.close();
  });

  it('creates a show with sections, lists it, and watches its outcomes live', async () => {
    const page = await signedIn();
    const show = await createThroughForm(page, 'Admin-made show');
    expect(show.sections).toEqual([
      expect.objectContaining({ name: 'Balcony', total_seats: 10, price_cents: 3_550 }),
      expect.objectContaining({ name: 'Floor', total_seats: 16 }),
    ]);
    const row = page.locator(`tr[data-show="${show.id}"]`);
    await expect.poll(() => row.textContent(), LIVE).toContain('Admin-made show');
    expect(await row.textContent()).toContain('26 / 26');
    await expect.poll(() => page.locator('#watch-title').textContent(), LIVE).toBe('Watching Admin-made show');
    await screenshot(page, '12-admin-created');

    const booked = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'ops@example.com', seat_count: 3, section: 'Balcony' } });
    await waitForDecision(api.app, booked.body.id);
    const watch = page.locator('#watch-body');
    await expect.poll(() => watch.textContent(), LIVE).toContain('1 HELD');
    expect(await watch.textContent()).toMatch(/Balcony\s*7\s*3\s*0/);
    await screenshot(page, '13-admin-watching');
  });

  it('pauses and resumes a sale', async (test) => {
    // Needs POST /admin/shows/:id/pause and /resume (issue 13, engineer h1). Runs by itself once
    // they are in the app's route table; until then it is reported as skipped, not passed.
    const routes = routeTable(api.app).map((route) => `${route.method} ${route.path}`);
    if (!routes.includes('POST /admin/shows/:id/pause')) {
      test.skip('POST /admin/shows/:id/pause is not in this API yet (issue 13)');
      return;
    }
    const page = await signedIn();
    const show = await createThroughForm(page, 'Paused show');
    const row = page.locator(`tr[data-show="${show.id}"]`);
    await page.getByRole('button', { name: 'Pause Paused show' }).click();
    await expect.poll(() => row.locator('.sale-state').textContent(), LIVE).toBe('Paused');
    expect((await call(api.app, 'GET', `/shows/${show.id}`)).body.sales_state).toBe('PAUSED');
    await screenshot(page, '14-admin-paused');
    await page.getByRole('button', { name: 'Resume Paused show' }).click();
    await expect.poll(() => row.locator('.sale-state').textContent(), LIVE).toBe('On sale');
    expect((await call(api.app, 'GET', `/shows/${show.id}`)).body.sales_state).toBe('ON_SALE');
  });
});
