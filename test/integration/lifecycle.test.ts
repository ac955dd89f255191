import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { waitUntil } from '../harness/traffic-wait.ts';

// Regressions for two review findings: a client or a broker that vanishes while a sink is still
// working on the upstream connection must neither leak accounting nor crash the process.
const SLOW_SINK = fileURLToPath(new URL('../fixtures/slow-sink.ts', import.meta.url));
const CONNECT = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, keepalive: 60, clientId: 'vanishing' });

let balancer: TestBalancer | undefined;
let backend: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  await balancer?.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
  balancer = undefined;
  backend = undefined;
});

/** A backend that accepts and keeps every connection, optionally resetting it after `resetAfterMs`. */
async function startBackend(resetAfterMs?: number): Promise<number> {
  backend = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    if (resetAfterMs !== undefined) setTimeout(() => s.resetAndDestroy(), resetAfterMs);
  });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  return (backend.address() as AddressInfo).port;
}

describe('connection lifecycle while a sink is working', () => {
  it('a client that resets during the sink leaves no live connection, count or table use behind', async () => {
    const port = await startBackend();
    balancer = await startBalancer({ backends: [`b=127.0.0.1:${port}`], sinks: [{ use: SLOW_SINK, options: { delayMs: 400 } }] });
    const client = connect({ host: '127.0.0.1', port: balancer.port });
    client.on('error', () => undefined);
    await once(client, 'connect');
    client.write(CONNECT);
    // The backend connection exists once the sink starts working; the client then resets.
    await waitUntil('the sink to hold the backend connection', () => balancer!.server.pool.get('b')!.activeConnections === 1, { tries: 200, intervalMs: 10 });
    client.resetAndDestroy();
    await waitUntil('the connection to be rejected as client_closed_early', () => balancer!.server.stats.get('rejected_client_closed_early') === 1, { tries: 300, intervalMs: 10 });
    expect(balancer.server.pool.get('b')!.activeConnections).toBe(0);
    expect(balancer.server.stats.get('connections_spliced')).toBe(0);
    expect(balancer.server.stats.get('connections_active')).toBe(0);
    // The broker side is closed too, not left for the idle timeout.
    await waitUntil('the broker side to be closed', () => sockets.length > 0 && sockets.every((s) => s.destroyed || s.readableEnded), { tries: 300, intervalMs: 10 });
  });

  it('a broker that resets during the sink does not crash the balancer', async () => {
    const port = await startBackend(50);
    balancer = await startBalancer({ backends: [`b=127.0.0.1:${port}`], sinks: [{ use: SLOW_SINK, options: { delayMs: 300 } }] });
    const client = connect({ host: '127.0.0.1', port: balancer.port });
    client.on('error', () => undefined);
    await once(client, 'connect');
    client.write(CONNECT);
    // The splice sees the upstream already closed and closes the client: the connection ends, the process lives.
    await once(client, 'close');
    await waitUntil('accounting to return to zero', () => balancer!.server.stats.get('connections_active') === 0 && balancer!.server.pool.get('b')!.activeConnections === 0, { tries: 300, intervalMs: 10 });
    // Still serving: a new client is accepted and reaches the backend.
    const again = connect({ host: '127.0.0.1', port: balancer.port });
    again.on('error', () => undefined);
    await once(again, 'connect');
    again.destroy();
  });
});
