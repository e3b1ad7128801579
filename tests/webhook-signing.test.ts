import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { newSecret } from '../shared/webhooks/registry.js';
import { createSender, eventBody, signedHeaders, type Sender, type SignedEvent } from '../shared/webhooks/send.js';
import { checkTarget, isInternalAddress, TargetRefusedError } from '../shared/webhooks/target.js';
import { WebhookReceiver } from './support/webhook-receiver.js';

/**
 * Signing per the Standard Webhooks specification, checked against the specification's own test
 * vector, and the target policy that keeps webhooks off internal addresses in production, at
 * registration and when the relay connects.
 */

// The specification's test vector (standard-webhooks spec and every reference library's tests).
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

describe('signatures', () => {
  it("reproduce the specification's test vector", () => {
    const at = new Date(VECTOR.timestamp * 1_000);
    const event: SignedEvent = { url: 'http://unused', secret: VECTOR.secret, messageId: VECTOR.id, type: 'x', occurredAt: at, data: null };
    const headers = signedHeaders(event, VECTOR.body, at);
    expect(headers['webhook-signature']).toBe(VECTOR.signature);
    expect(headers['webhook-id']).toBe(VECTOR.id);
    expect(headers['webhook-timestamp']).toBe(String(VECTOR.timestamp));
  });

  it('verify with the reference library, and fail for another secret or a changed body', () => {
    const secret = newSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(secret.slice('whsec_'.length), 'base64').length).toBeGreaterThanOrEqual(24);
    const event: SignedEvent = { url: 'http://unused', secret, messageId: 'msg_1', type: 'booking.held', occurredAt: new Date(), data: { id: 'b' } };
    const body = eventBody(event);
    const headers = signedHeaders(event, body, new Date());
    expect(new Webhook(secret).verify(body, headers)).toEqual({ type: 'booking.held', timestamp: event.occurredAt.toISOString(), data: { id: 'b' } });
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow();
    expect(() => new Webhook(secret).verify(body.replace('"b"', '"c"'), headers)).toThrow();
  });
});

describe('the target policy', () => {
  const production = { production: true, allowedHosts: [] };

  it('knows the internal ranges', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) {
      expect(isInternalAddress(address), address).toBe(true);
    }
    for (const address of ['8.8.8.8', '172.32.0.1', '93.184.216.34', '2606:4700::1111', '::ffff:8.8.8.8']) {
      expect(isInternalAddress(address), address).toBe(false);
    }
  });

  it('refuses internal targets at registration in production, by address or by what a name resolves to', async () => {
    const resolve = async (host: string) => [{ address: host === 'rebind.example' ? '10.0.0.7' : '93.184.216.34', family: 4 }];
    for (const url of ['http://127.0.0.1:8080/x', 'https://[::1]/x', 'http://169.254.169.254/latest', 'http://rebind.example/x']) {
      await expect(checkTarget(url, production, resolve), url).rejects.toBeInstanceOf(TargetRefusedError);
    }
    await expect(checkTarget('https://hooks.example.com/x', production, resolve)).resolves.toBeUndefined();
    await expect(checkTarget('http://127.0.0.1/x', { production: false, allowedHosts: [] }, resolve)).resolves.toBeUndefined();
    await expect(checkTarget('http://127.0.0.1/x', { production: true, allowedHosts: ['127.0.0.0/8'] }, resolve)).resolves.toBeUndefined();
    await expect(checkTarget('http://rebind.example/x', { production: true, allowedHosts: ['rebind.example'] }, resolve)).resolves.toBeUndefined();
  });

  describe('when the relay connects', () => {
    let receiver: WebhookReceiver;
    let sender: Sender | undefined;
    afterEach(async () => {
      await sender?.close();
      await receiver.stop();
    });

    const event = (url: string): SignedEvent => ({ url, secret: newSecret(), messageId: 'msg_x', type: 'booking.held', occurredAt: new Date(), data: {} });

    it('refuses a name that resolves to an internal address, and an internal address, in production; sends once allowed', async () => {
      receiver = await new WebhookReceiver().start();
      sender = createSender(production, 2_000);
      const byName = await sender.send(event(`http://localhost:${receiver.port}/hooks`));
      expect(byName).toMatchObject({ ok: false, statusCode: null });
      expect(!byName.ok && byName.error).toMatch(/resolves to .*loopback/);
      const byAddress = await sender.send(event(receiver.url));
      expect(!byAddress.ok && byAddress.error).toMatch(/127\.0\.0\.1 is a loopback/);
      expect(receiver.received).toHaveLength(0);
      await sender.close();

      sender = createSender({ production: true, allowedHosts: ['127.0.0.1', 'localhost'] }, 2_000);
      expect(await sender.send(event(receiver.url))).toMatchObject({ ok: true, statusCode: 204 });
      expect(await sender.send(event(`http://localhost:${receiver.port}/hooks`))).toMatchObject({ ok: true, statusCode: 204 });
      expect(receiver.received).toHaveLength(2);
    });

    it('outside production sends to loopback', async () => {
      receiver = await new WebhookReceiver().start();
      sender = createSender({ production: false, allowedHosts: [] }, 2_000);
      expect(await sender.send(event(`http://localhost:${receiver.port}/hooks`))).toMatchObject({ ok: true, statusCode: 204 });
    });
  });
});
