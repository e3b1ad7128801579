import { createDb } from '../../shared/db/client.js';

/**
 * A database handle on one connection that records the first word of every statement it sends
 * (BEGIN, SELECT, WITH…): how tests count a claim's round trips.
 */
export function countingDb(databaseUrl: string, applicationName: string) {
  const sent: string[] = [];
  const counted = createDb({ connectionString: databaseUrl, max: 1, applicationName });
  counted.pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0] as string | { text?: string };
      sent.push((typeof first === 'string' ? first : (first.text ?? '')).trim().split(/\s+/)[0]!.toUpperCase());
      return query(...args);
    };
  });
  return { counted, sent };
}
