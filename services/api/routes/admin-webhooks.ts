import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Webhook } from '../../../shared/db/schema/index.js';
import { createWebhook, deleteWebhook, getWebhook, listDeliveries, listWebhooks, type DeliveryRecord } from '../../../shared/webhooks/registry.js';
import { checkTarget, TargetRefusedError } from '../../../shared/webhooks/target.js';
import type { AppDeps } from '../deps.js';
import { badRequest, notFound } from '../errors.js';
import { decodeCursor, nextLink } from '../pagination.js';
import {
  CreateWebhookBody,
  DeliveryList,
  ErrorBody,
  IdParams,
  WebhookCreated,
  WebhookDeleted,
  WebhookList,
  WebhookListQuery,
} from '../schemas.js';

/** Registering webhooks and reading what was sent to them (shared/webhooks/registry.ts). */

const webhookView = (webhook: Webhook) => ({
  id: webhook.id,
  url: webhook.url,
  events: webhook.events,
  created_at: webhook.createdAt.toISOString(),
});

const iso = (value: Date | null) => (value ? value.toISOString() : null);

const deliveryView = (delivery: DeliveryRecord) => ({
  id: delivery.id,
  event_id: `msg_${delivery.messageId}`,
  type: delivery.type,
  booking_id: delivery.bookingId,
  status: delivery.status,
  attempts: delivery.attempts,
  status_code: delivery.lastStatusCode,
  latency_ms: delivery.lastLatencyMs,
  error: delivery.lastError,
  last_attempt_at: iso(delivery.lastAttemptAt),
  next_retry_at: delivery.status === 'PENDING' ? delivery.nextAttemptAt.toISOString() : null,
  delivered_at: iso(delivery.deliveredAt),
  created_at: delivery.createdAt.toISOString(),
});

export const adminWebhookRoutes =
  (deps: Pick<AppDeps, 'db' | 'config'>): FastifyPluginAsyncZod =>
  async (app) => {
    const policy = { production: deps.config.NODE_ENV === 'production', allowedHosts: deps.config.WEBHOOK_ALLOWED_HOSTS };

    app.post(
      '/admin/webhooks',
      {
        schema: {
          summary: 'Register a webhook: signed booking events are POSTed to its URL',
          description:
            'Answers the signing secret, once. Events are signed per the Standard Webhooks spec (webhook-id, webhook-timestamp, ' +
            'webhook-signature headers; body {type, timestamp, data} with data the booking). Delivered at least once, in order ' +
            'per booking, retried with backoff for WEBHOOK_RETRY_WINDOW_SECONDS (24 h) until the receiver answers 2xx.',
          security: [{ adminToken: [] }],
          tags: ['admin'],
          body: CreateWebhookBody,
          response: { 201: WebhookCreated, 400: ErrorBody, 401: ErrorBody },
        },
      },
      async (request, reply) => {
        try {
          await checkTarget(request.body.url, policy);
        } catch (error) {
          if (error instanceof TargetRefusedError) throw badRequest('url', error.message);
          throw error;
        }
        const webhook = await createWebhook(deps.db, { url: request.body.url, events: request.body.events });
        request.log.info({ webhookId: webhook.id, events: webhook.events }, 'webhook registered');
        reply.code(201).header('location', `/admin/webhooks/${webhook.id}/deliveries`);
        return { ...webhookView(webhook), secret: webhook.secret };
      },
    );

    app.get(
      '/admin/webhooks',
      {
        schema: {
          summary: 'List webhooks, newest first, a page at a time (secrets are never shown again)',
          security: [{ adminToken: [] }],
          tags: ['admin'],
          querystring: WebhookListQuery,
          response: { 200: WebhookList, 400: ErrorBody, 401: ErrorBody },
        },
      },
      async (request) => {
        const { limit, cursor } = request.query;
        const page = await listWebhooks(deps.db, { limit, after: cursor ? decodeCursor(cursor) : null });
        return { webhooks: page.items.map(webhookView), next: nextLink('/admin/webhooks', { limit }, page.next) };
      },
    );

    app.delete(
      '/admin/webhooks/:id',
      {
        schema: {
          summary: 'Delete a webhook; its pending deliveries are dropped',
          security: [{ adminToken: [] }],
          tags: ['admin'],
          params: IdParams,
          response: { 200: WebhookDeleted, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => {
        if (!(await deleteWebhook(deps.db, request.params.id))) throw notFound('Webhook');
        request.log.info({ webhookId: request.params.id }, 'webhook deleted');
        return { id: request.params.id, deleted: true as const };
      },
    );

    app.get(
      '/admin/webhooks/:id/deliveries',
      {
        schema: {
          summary: "A webhook's deliveries, newest first: each event's last attempt (status code, latency, error) and next retry",
          security: [{ adminToken: [] }],
          tags: ['admin'],
          params: IdParams,
          querystring: WebhookListQuery,
          response: { 200: DeliveryList, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => {
        const { id } = request.params;
        const { limit, cursor } = request.query;
        if (!(await getWebhook(deps.db, id))) throw notFound('Webhook');
        const page = await listDeliveries(deps.db, id, { limit, after: cursor ? decodeCursor(cursor) : null });
        return { deliveries: page.items.map(deliveryView), next: nextLink(`/admin/webhooks/${id}/deliveries`, { limit }, page.next) };
      },
    );
  };
