import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAll, startTether } from '../../cli/test/helpers/cli.ts';
import { ClientPool, Inbox } from '../harness/traffic-mqtt-clients.ts';

/**
 * `tether start --ws-listen`: the quick start. With no backends the embedded brokers serve the
 * WebSocket clients (bridged to their plain ports), in one process and with workers.
 */

const pool = new ClientPool();
afterEach(() => pool.closeAll());
afterAll(() => killAll());

describe('tether start --ws-listen', { timeout: 90_000 }, () => {
  it.each([1, 2])('with --workers %i: a WebSocket client and a TCP client meet through the embedded brokers; a persistent ws client keeps its session', async (workers) => {
    const tether = await startTether(['--listen', '127.0.0.1:0', '--ws-listen', '127.0.0.1:0', '--workers', String(workers)], { timeoutMs: 60_000 });
    try {
      const listeners = tether.listening.listeners as Record<string, string>;
      expect(Object.keys(listeners)).toEqual(['main', 'ws']);
      const wsUrl = `ws://${listeners.ws}/mqtt`;
      // The demo brokers announce their own WebSocket endpoints too.
      const started = await tether.waitForLog((l) => Array.isArray(l.websocket));
      expect((started.websocket as string[]).every((w) => /^embedded\d=ws:\/\/127\.0\.0\.1:\d+\/mqtt$/.test(w))).toBe(true);

      const inbox = new Inbox();
      const browser = await pool.connect(wsUrl, { clientId: 'qs-ws', clean: false }, inbox);
      await browser.client.subscribeAsync('qs/#', { qos: 1 });
      const tcp = await pool.connect(tether.url, { clientId: 'qs-tcp', clean: true });
      await tcp.client.publishAsync('qs/hello', 'from tcp', { qos: 1 });
      await inbox.until('the TCP client\'s message', (msgs) => msgs.some((m) => m.payload.toString() === 'from tcp'));

      await pool.disconnect(browser.client);
      await tcp.client.publishAsync('qs/queued', 'while away', { qos: 1 });
      const again = await pool.connect(wsUrl, { clientId: 'qs-ws', clean: false }, inbox);
      expect(again.connack.sessionPresent).toBe(true);
      await inbox.until('the queued message', (msgs) => msgs.some((m) => m.payload.toString() === 'while away'));
    } finally {
      expect((await tether.stop()).code).toBe(0);
    }
  });
});
