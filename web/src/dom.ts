/**
 * Building the pages' DOM without innerHTML (show names come from operators: text nodes can
 * never become markup) and without inline handlers (the CSP forbids them), plus the few
 * formats both pages print.
 */

type Attributes = Record<string, string | number | boolean | undefined | null | ((event: Event) => void)>;
export type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (name in element && typeof value !== 'string') (element as unknown as Record<string, unknown>)[name] = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export const $ = <T extends HTMLElement = HTMLElement>(selector: string, root: ParentNode = document): T => {
  const found = root.querySelector<T>(selector);
  if (!found) throw new Error(`the page has no ${selector}`);
  return found;
};

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export const formatDate = (iso: string) => dateTime.format(new Date(iso));

/** Prices are whole cents in the API, which names no currency; the page shows euros. */
const CURRENCY = 'EUR';
const money = new Intl.NumberFormat(undefined, { style: 'currency', currency: CURRENCY });
export const formatMoney = (cents: number) => money.format(cents / 100);

/** 3 h 05 min, 4 min 09 s, 42 s: a countdown a person reads at a glance. */
export function formatDuration(totalSeconds: number): string {
  const seconds = Math.max(0, Math.ceil(totalSeconds));
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  if (hours > 0) return `${hours} h ${String(minutes).padStart(2, '0')} min`;
  if (minutes > 0) return `${minutes} min ${String(rest).padStart(2, '0')} s`;
  return `${rest} s`;
}

/** Seconds from now until `iso` (negative once past). */
export const secondsUntil = (iso: string) => (Date.parse(iso) - Date.now()) / 1000;

/**
 * Elements showing a countdown carry `data-until` (an ISO time) and `data-prefix`; one timer
 * refreshes them all every second, so a countdown never needs its own.
 */
export function startCountdowns(onElapsed?: (element: HTMLElement) => void): void {
  const refresh = () => {
    for (const element of document.querySelectorAll<HTMLElement>('[data-until]')) {
      const left = secondsUntil(element.dataset.until!);
      element.textContent = left > 0 ? `${element.dataset.prefix ?? ''}${formatDuration(left)}` : (element.dataset.done ?? '');
      if (left <= 0 && !element.dataset.elapsed) {
        element.dataset.elapsed = 'yes';
        onElapsed?.(element);
      }
    }
  };
  refresh();
  window.setInterval(refresh, 1_000);
}

/** A countdown element (see startCountdowns). */
export const countdown = (until: string, prefix: string, done: string, attributes: Attributes = {}) =>
  h('span', { ...attributes, 'data-until': until, 'data-prefix': prefix, 'data-done': done }, `${prefix}${formatDuration(secondsUntil(until))}`);
