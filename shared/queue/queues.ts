import { Queue } from 'bullmq';
import type { RedisClient } from '../redis.js';
import { QUEUES } from './catalog.js';

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/**
 * Opens a queue on an existing connection. The prefix is configurable so several deployments
 * (or test files) can share one Redis; wrap it in braces, e.g. "{ticket-rush}", on Redis
 * Cluster so all of a queue's keys hash to one slot.
 */
export function openQueue(name: QueueName, connection: RedisClient, prefix: string): Queue {
  return new Queue(name, { connection, prefix });
}
