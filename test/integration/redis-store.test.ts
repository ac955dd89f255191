import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllClients, connectClient, disconnect } from '../../cli/test/helpers/mqtt.ts';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { startMosquitto } from '../harness/mosquitto.ts';
import { waitFor } from '../harness/poll.ts';
import { RedisServer } from '../harness/redis.ts';
import { MosquittoLog } from '../harness/traffic-mosquitto-log.ts';
import { Teardown } from '../harness/traffic-teardown.ts';

/**
 * Two Tether instances, one Redis, two independent mosquitto brokers (no bridge: a session lives on
 * one broker only), the deployment docs/scale-out.md walks through. Persistent clients reconnect
 * through either instance at random; each reconnect must find its session (CONNACK session present)
 * and the QoS 1 message published while it was away, also after both instances are restarted.
 */

const missing = ['redis-server', 'redis-cli', 'mosquitto'].map(skipReason).join('');
const T = 120_000;
const teardown = new Teardown();
afterEach(async () => {
  await closeAllClients();
  await teardown.run();
}, 30_000);

interface Deployment {
  readonly redis: RedisServer;
  readonly brokers: { name: string; port: number; log: MosquittoLog }[];
  /** The two instances (replaced by `restart`). */
  instances: TestBalancer[];
  restart(): Promise<void>;
}

async function deploy(): Promise<Deployment> {
  const redis = teardown.add('redis', await RedisServer.start(), (r) => r.close());
  const brokers = [];
  for (const name of ['mosq1', 'mosq2']) {
    const m = teardown.add(name, await startMosquitto(), (x) => x.stop());
    brokers.push({ name, port: m.port, log: new MosquittoLog(name, m) });
  }
  const specs = brokers.map((b) => `${b.name}=127.0.0.1:${b.port}`);
  const start = (i: number): Promise<TestBalancer> => startBalancer({
    // The second instance lists the brokers in the other order: entries name brokers, not positions.
    backends: i === 0 ? specs : [...specs].reverse(),
    select: [{ use: 'stick-table', options: { store: { type: 'redis', url: redis.url } } }, 'least-connections'],
  });
  const d: Deployment = {
    redis,
    brokers,
    instances: [await start(0), await start(1)],
    async restart() {
      await Promise.all(d.instances.map((b) => b.close()));
      d.instances = [await start(0), await start(1)];
    },
  };
  teardown.defer('tether instances', () => Promise.all(d.instances.map((b) => b.close())));
  return d;
}

/** A fixed pseudo-random sequence, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Publishes a QoS 1 message on both brokers directly: only the one holding the session queues it. */
async function publishOnBoth(d: Deployment, topic: string, payload: string): Promise<void> {
  for (const b of d.brokers) {
    const { client } = await connectClient(`mqtt://127.0.0.1:${b.port}`, { clientId: `pub-${b.name}-${topic.replace(/\W/g, '')}`, clean: true });
    await client.publishAsync(topic, payload, { qos: 1 });
    await disconnect(client);
  }
}

describe.skipIf(missing !== '')(`two Tether instances on one Redis in front of two mosquittos${missing}`, { timeout: T }, () => {
  it('persistent clients reconnecting through either instance at random keep their session every time, also after both instances restart', async () => {
    const d = await deploy();
    const next = random(9);
    const ids = Array.from({ length: 10 }, (_, i) => `scale-client-${i}`);
    const via = (): TestBalancer => d.instances[next() < 0.5 ? 0 : 1]!;
    // First connection: subscribe (QoS 1, persistent session), then leave.
    for (const id of ids) {
      const { client } = await connectClient(via().url, { clientId: id, clean: false });
      await client.subscribeAsync(`box/${id}`, { qos: 1 });
      await disconnect(client);
    }
    const homes = new Map(ids.map((id) => [id, d.brokers.filter((b) => b.log.connectionsOf(id).length > 0).map((b) => b.name)]));
    for (const [id, home] of homes) expect(home, `${id} first landed on one broker`).toHaveLength(1);
    // Least-connections spread them: both brokers hold sessions.
    expect(new Set([...homes.values()].flat()).size).toBe(2);

    let reconnects = 0;
    for (let round = 1; round <= 4; round++) {
      if (round === 3) await d.restart();
      for (const id of [...ids].sort(() => next() - 0.5)) {
        const payload = `round-${round}`;
        await publishOnBoth(d, `box/${id}`, payload);
        const instance = via();
        const { client, connack, messages } = await connectClient(instance.url, { clientId: id, clean: false });
        expect(connack.sessionPresent, `${id} round ${round}: session present`).toBe(true);
        await waitFor(() => messages.some((m) => m.payload === payload), { what: `${id} to receive the message queued in round ${round}` });
        await disconnect(client);
        reconnects++;
      }
    }
    expect(reconnects).toBe(40);
    // The brokers agree: every connection of a client reached its first broker.
    for (const [id, [home]] of homes) {
      for (const b of d.brokers) if (b.name !== home) expect(b.log.connectionsOf(id), `${id} never on ${b.name}`).toEqual([]);
    }
  });

  it('many new clients connecting through both instances at the same moment each land on one broker', async () => {
    const d = await deploy();
    const ids = Array.from({ length: 20 }, (_, i) => `race-client-${i}`);
    // Both instances see every key for the first time at once; the broker logs say where each went.
    const attempts = ids.flatMap((id) => d.instances.map((b) => connectClient(b.url, { clientId: id, clean: false }).then((c) => c.client, () => undefined)));
    const clients = (await Promise.all(attempts)).filter((c): c is MqttClient => c !== undefined);
    await waitFor(() => ids.every((id) => d.brokers.reduce((n, b) => n + b.log.connectionsOf(id).length, 0) >= 2), { what: 'both connections of every client to reach a broker' });
    for (const id of ids) {
      const on = d.brokers.filter((b) => b.log.connectionsOf(id).length > 0).map((b) => b.name);
      expect(on, `${id} reached`).toHaveLength(1);
      expect(await d.redis.cli('GET', `tether:${id}`)).toBe(on[0]);
    }
    for (const c of clients) c.end(true);
  });

  it('Redis stopped mid-run: clients still connect through both instances; Redis back: what they learned is in Redis again', async () => {
    const d = await deploy();
    const before = 'redis-gone-before';
    await disconnect((await connectClient(d.instances[0]!.url, { clientId: before, clean: false })).client);
    await d.redis.stop('SIGKILL');
    const during = ['redis-gone-1', 'redis-gone-2', 'redis-gone-3', 'redis-gone-4'];
    for (const [i, id] of during.entries()) {
      const { client, connack } = await connectClient(d.instances[i % 2]!.url, { clientId: id, clean: false });
      expect(connack.returnCode ?? connack.reasonCode ?? 0).toBe(0);
      await disconnect(client);
    }
    await d.redis.restart();
    const landed = (id: string): string => d.brokers.find((b) => b.log.connectionsOf(id).length > 0)!.name;
    const ids = [before, ...during];
    let stored = '';
    await waitFor(async () => (stored = await d.redis.cli('MGET', ...ids.map((id) => `tether:${id}`))) === ids.map(landed).join('\n'), {
      what: () => `every learn written back to Redis: ${JSON.stringify(stored)} for ${ids.map(landed).join(',')}`,
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    // And the instances use it: the other instance routes the first client home.
    const { connack } = await connectClient(d.instances[1]!.url, { clientId: before, clean: false });
    expect(connack.sessionPresent).toBe(true);
  });
});
