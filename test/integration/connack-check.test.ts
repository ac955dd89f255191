import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { startBalancer } from '../harness/balancer.ts';
import { Cleanup, delay, waitFor, waitForLog } from '../harness/poll.ts';
import { Scrape } from '../harness/prometheus.ts';
import { RawClient } from '../harness/raw-mqtt-client.ts';

/**
 * The CONNACK check in the splice, against a broker that answers in odd ways a real broker will
 * not be told to: a CONNACK written one byte at a time (the balancer reads it in pieces), a
 * first packet that is not a CONNACK. The client must get every byte unchanged either way.
 */

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A broker that answers each CONNECT with `reply`, written in the given pieces with pauses between them. */
async function oddBroker(reply: Buffer, pieces: readonly number[]): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', async () => {
      let at = 0;
      for (const n of [...pieces, reply.length]) {
        if (at >= reply.length || socket.destroyed) break;
        socket.write(reply.subarray(at, Math.min(reply.length, at + n)));
        at += n;
        // Pacing, so that each piece arrives in a read of its own.
        await delay(15);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(server, (s) => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => s.close(resolve));
  });
  return (server.address() as AddressInfo).port;
}

const CONNECT = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, keepalive: 60, clientId: 'odd-1' });

describe('the CONNACK check in the splice', () => {
  it('reads a CONNACK that arrives one byte at a time, and forwards every byte as it came', async () => {
    const connack = mqttPacket.generate({ cmd: 'connack', sessionPresent: true, returnCode: 0 });
    const port = await oddBroker(connack, [1, 1, 1, 1]);
    const b = cleanup.add(await startBalancer({ backends: [`odd=127.0.0.1:${port}`], sinks: [] }), (x) => x.close());
    const client = cleanup.add(await RawClient.connect(b.port), (c) => c.socket.destroy());
    client.socket.write(CONNECT);
    await waitFor(() => client.received().length === 4, { what: 'the 4 CONNACK bytes at the client' });
    expect(client.received()).toEqual(connack);
    client.socket.end();
    const closed = await waitForLog(b.logs, { msg: 'connection closed' });
    expect(closed).toMatchObject({ backend: 'odd', mqtt: { clientId: 'odd-1' }, connack: { code: 0, reason: 'accepted', sessionPresent: true } });
  });

  it('counts a first packet that is not a CONNACK, says so in the close line, and still forwards it', async () => {
    const publish = mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('early'), qos: 0, retain: false, dup: false });
    const port = await oddBroker(publish, [3]);
    const b = cleanup.add(await startBalancer({ backends: [`odd=127.0.0.1:${port}`], sinks: [] }), (x) => x.close());
    const client = cleanup.add(await RawClient.connect(b.port), (c) => c.socket.destroy());
    client.socket.write(CONNECT);
    await waitFor(() => client.received().length === publish.length, { what: 'the PUBLISH at the client' });
    expect(client.received()).toEqual(publish);
    client.socket.end();
    const closed = await waitForLog(b.logs, { msg: 'connection closed' });
    expect(closed.connack).toEqual({ error: 'the broker\'s first packet is PUBLISH (header 0x30), expected CONNACK' });
    expect(b.server.stats.get('connack_invalid')).toBe(1);
    const scrape = new Scrape((await b.server.metrics!.exposition()).body);
    expect(scrape.value('tether_connack_invalid_total', { backend: 'odd' })).toBe(1);
  });
});
