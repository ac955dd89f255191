import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBalancer, stuckTo, tableEntries, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { HaAedes, startHaBrokers, waitForHolder } from '../harness/ha-aedes.ts';
import { HaMosquitto } from '../harness/ha-mosquitto.ts';
import { Cleanup, waitFor, waitForLog } from '../harness/poll.ts';
import { ClientPool, Inbox } from '../harness/traffic-mqtt-clients.ts';

/**
 * The session-aware chain: `select: [{ use: stick-table, when: persistent }, least-connections]`.
 * Clients with a persistent session (clean=false) are pinned to the broker that holds their
 * session; clean clients are balanced by load and never remembered. When a broker goes away and
 * comes back, that gives two properties at once, shown below with three independent aedes brokers:
 *
 *  - no persistent client moves unless its broker died, and none ever moves back and forth, so
 *    every session that survived stays usable (sessionPresent true, queued messages delivered);
 *  - the returning broker refills at once, from clean clients, which lose nothing by moving.
 *
 * Two controls change only the `select` chain and show what goes wrong without the design:
 * rendezvous hashing for everyone moves displaced persistent clients back when their broker
 * returns (their new sessions are lost), and a stick table for everyone pins the clean clients
 * too, so the returning broker gets none of them.
 */

vi.setConfig({ testTimeout: 90_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
const pool = new ClientPool();
afterEach(async () => {
  await pool.closeAll();
  await cleanup.run();
});

const SESSION_AWARE = [{ use: 'stick-table', when: 'persistent' }, 'least-connections'];
const HEALTH = { 'healthCheck.type': 'tcp', 'healthCheck.interval': '50ms', 'healthCheck.timeout': '1s', 'healthCheck.rise': 2, 'healthCheck.fall': 2 };

const PERSISTENT = Array.from({ length: 12 }, (_, i) => `p-${i}`);
const CLEAN = Array.from({ length: 30 }, (_, i) => `c-${i}`);

/** The clients of one scenario, each reconnected only when the test says so, with where each landed. */
class Fleet {
  readonly live = new Map<string, MqttClient>();
  /** Broker of every connection of each client, in order. */
  readonly history = new Map<string, string[]>();
  /** sessionPresent of every connection of each client, in order. */
  readonly sessions = new Map<string, boolean[]>();
  readonly inboxes = new Map<string, Inbox>();
  readonly #bal: TestBalancer;
  readonly #brokers: readonly HaAedes[];

  constructor(bal: TestBalancer, brokers: readonly HaAedes[]) {
    this.#bal = bal;
    this.#brokers = brokers;
  }

  /** Connects through Tether (persistent or clean), waits for the broker that holds it, records both. */
  async connect(id: string, persistent: boolean): Promise<{ broker: string; sessionPresent: boolean }> {
    const inbox = new Inbox();
    this.inboxes.set(id, inbox);
    const { client, connack } = await pool.connect(this.#bal.url, { clientId: id, clean: !persistent }, inbox);
    expect(connack.returnCode, id).toBe(0);
    this.live.set(id, client);
    const broker = (await waitForHolder(this.#brokers, id)).id;
    this.history.set(id, [...(this.history.get(id) ?? []), broker]);
    this.sessions.set(id, [...(this.sessions.get(id) ?? []), connack.sessionPresent]);
    return { broker, sessionPresent: connack.sessionPresent };
  }

  /** A clean MQTT DISCONNECT, then waits until the broker no longer holds the client (its session is offline). */
  async disconnect(id: string): Promise<void> {
    const client = this.live.get(id);
    this.live.delete(id);
    if (!client) return;
    const broker = this.#brokers.find((b) => b.id === this.last(id));
    if (client.connected) await pool.disconnect(client);
    else await client.endAsync(true);
    if (broker?.running) await waitFor(() => !broker.holds(id), { what: `${broker.id} to let ${id} go` });
  }

  last(id: string): string {
    return this.history.get(id)!.at(-1)!;
  }

  /** Waits until the client objects of `ids` have all seen their connection close. */
  async lost(ids: readonly string[]): Promise<void> {
    await waitFor(() => ids.every((id) => !this.live.get(id)?.connected), { what: `${ids.join(', ')} to see their connections close` });
  }
}

interface Scenario {
  readonly bal: TestBalancer;
  readonly brokers: readonly HaAedes[];
  readonly b2: HaAedes;
  readonly fleet: Fleet;
}

async function scenario(select: unknown[]): Promise<Scenario> {
  const brokers = cleanup.add(await startHaBrokers(3), (list) => Promise.all(list.map((b) => b.close())));
  const bal = cleanup.add(await startBalancer({ backends: brokers.map((b) => b.spec), select, ...HEALTH }), (b) => b.close());
  return { bal, brokers, b2: brokers[1]!, fleet: new Fleet(bal, brokers) };
}

/** Takes b2 away (every connection on it drops) and waits for the health check to mark it down. */
async function outage(s: Scenario): Promise<void> {
  await s.b2.kill();
  await waitForLog(s.bal.logs, { msg: 'backend is DOWN', backend: 'b2' });
}

/** Brings b2 back on the same port (an empty broker) and waits for the health check to mark it up. */
async function recovery(s: Scenario): Promise<void> {
  await s.b2.restart();
  await waitForLog(s.bal.logs, { msg: 'backend is UP', backend: 'b2' });
}

/** Connects the persistent clients; each subscribes (QoS 1) to its own topic, so its session has state. */
async function connectPersistent(s: Scenario, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    await s.fleet.connect(id, true);
    await s.fleet.live.get(id)!.subscribeAsync(`s/${id}`, { qos: 1 });
  }
}

/** Disconnects each live client of `ids` and connects it again (same session kind), one by one. */
async function reconnectEach(s: Scenario, ids: readonly string[], persistent: boolean): Promise<void> {
  for (const id of ids) {
    await s.fleet.disconnect(id);
    await s.fleet.connect(id, persistent);
  }
}

/** Where the clean clients land when all of them reconnect after b2's return: disconnect all, then connect all. */
async function cleanRefill(s: Scenario): Promise<Map<string, number>> {
  for (const id of CLEAN) await s.fleet.disconnect(id);
  const counts = new Map<string, number>(s.brokers.map((b) => [b.id, 0]));
  for (const id of CLEAN) {
    const { broker } = await s.fleet.connect(id, false);
    counts.set(broker, counts.get(broker)! + 1);
  }
  return counts;
}

const stickKeys = async (s: Scenario): Promise<string[]> => (await tableEntries(s.bal)).map((e) => e.key).sort();

describe('session-aware chain: stick-table for persistent clients, least-connections for the rest', () => {
  it('a broker that goes away and comes back: surviving sessions stay put, displaced ones move once, and the returning broker refills with clean clients', async () => {
    const s = await scenario(SESSION_AWARE);
    await connectPersistent(s, PERSISTENT);
    for (const id of CLEAN) await s.fleet.connect(id, false);
    const home = new Map(PERSISTENT.map((id) => [id, s.fleet.last(id)]));
    const displaced = PERSISTENT.filter((id) => home.get(id) === 'b2');
    const survivors = PERSISTENT.filter((id) => home.get(id) !== 'b2');
    // least-connections spreads the 12 persistent clients 4/4/4 (each stays connected).
    expect(displaced).toHaveLength(4);

    // --- b2 goes away. Its clients (persistent and clean) lose their connections.
    await outage(s);
    await s.fleet.lost(displaced);
    // Every persistent client reconnects during the outage.
    await reconnectEach(s, PERSISTENT, true);
    for (const id of survivors) {
      expect(s.fleet.last(id), id).toBe(home.get(id));
      expect(s.fleet.sessions.get(id)!.at(-1), `${id} keeps its session`).toBe(true);
    }
    for (const id of displaced) {
      expect(s.fleet.last(id), id).not.toBe('b2');
      expect(s.fleet.sessions.get(id)!.at(-1), `${id} starts a new session`).toBe(false);
      // The new session gets state of its own, on its new broker.
      await s.fleet.live.get(id)!.subscribeAsync(`s/${id}`, { qos: 1 });
    }
    // The clean clients that were on b2 come back elsewhere.
    const cleanOnB2 = CLEAN.filter((id) => s.fleet.last(id) === 'b2');
    await s.fleet.lost(cleanOnB2);
    for (const id of cleanOnB2) await s.fleet.connect(id, false);

    // --- b2 comes back, empty, on the same port.
    await recovery(s);
    const placed = new Map(PERSISTENT.map((id) => [id, s.fleet.last(id)]));

    // Two rounds of persistent reconnects: every one finds its session where it left it.
    await reconnectEach(s, PERSISTENT, true);
    await reconnectEach(s, PERSISTENT, true);
    for (const id of PERSISTENT) {
      const after = s.fleet.history.get(id)!.slice(-2);
      expect(after, `${id} stays on ${placed.get(id)}`).toEqual([placed.get(id), placed.get(id)]);
      expect(s.fleet.sessions.get(id)!.slice(-2), `${id} has its session`).toEqual([true, true]);
    }

    // The session is real, not just a flag: a QoS 1 message published on the client's broker while
    // it is offline is waiting for it when it reconnects through Tether.
    for (const id of PERSISTENT) await s.fleet.disconnect(id);
    for (const id of PERSISTENT) {
      const broker = s.brokers.find((b) => b.id === placed.get(id))!;
      const { client: direct } = await pool.connect(`mqtt://127.0.0.1:${broker.port}`, { clientId: `direct-${id}`, clean: true });
      await direct.publishAsync(`s/${id}`, `queued-for-${id}`, { qos: 1 });
      await pool.disconnect(direct);
    }
    for (const id of PERSISTENT) {
      const { broker, sessionPresent } = await s.fleet.connect(id, true);
      expect([broker, sessionPresent], id).toEqual([placed.get(id), true]);
      await s.fleet.inboxes.get(id)!.until(`${id}'s queued message`, (m) => m.some((x) => x.payload.toString() === `queued-for-${id}`));
    }

    // No persistent client ever went back and forth: the survivors never moved, the displaced
    // moved exactly once (off b2) and never back.
    for (const id of survivors) expect(new Set(s.fleet.history.get(id)), id).toEqual(new Set([home.get(id)]));
    for (const id of displaced) {
      const [first, ...rest] = s.fleet.history.get(id)!;
      expect(first).toBe('b2');
      expect(new Set(rest).size, `${id}: ${s.fleet.history.get(id)!.join(' → ')}`).toBe(1);
      expect(rest).not.toContain('b2');
    }

    // The returning broker refills from the clean clients: of 30 reconnects it gets a fair share.
    const counts = await cleanRefill(s);
    expect(counts.get('b2'), JSON.stringify([...counts])).toBeGreaterThanOrEqual(6); // at least 20 %

    // The stick table remembers exactly the persistent clients, never a clean one.
    expect(await stickKeys(s)).toEqual([...PERSISTENT].sort());
  });
});

describe('controls: the same outage with a chain that ignores the session kind', () => {
  it('rendezvous-hash for everyone: displaced persistent clients are moved back when the broker returns, losing the session they had rebuilt', async () => {
    const s = await scenario(['rendezvous-hash', 'least-connections']);
    await connectPersistent(s, PERSISTENT);
    // The hash depends only on the key and the backend name, so these ids always give b2 some.
    const displaced = PERSISTENT.filter((id) => s.fleet.last(id) === 'b2');
    expect(displaced.length, 'keys that hash to b2').toBeGreaterThan(0);

    await outage(s);
    await s.fleet.lost(displaced);
    for (const id of displaced) {
      await s.fleet.disconnect(id);
      await s.fleet.connect(id, true);
      await s.fleet.live.get(id)!.subscribeAsync(`s/${id}`, { qos: 1 });
    }
    await recovery(s);
    // Each displaced client reconnects once more, as it would after any network blip.
    await reconnectEach(s, displaced, true);
    for (const id of displaced) {
      const [first, during, after] = s.fleet.history.get(id)!;
      // b2 → elsewhere → b2: back and forth, and the session built during the outage is gone.
      expect([first, after], id).toEqual(['b2', 'b2']);
      expect(during).not.toBe('b2');
      expect(s.fleet.sessions.get(id), id).toEqual([false, false, false]);
    }
  });

  it('stick-table for everyone: clean clients are pinned too, so the returning broker gets none of their reconnects', async () => {
    const s = await scenario(['stick-table', 'least-connections']);
    await connectPersistent(s, PERSISTENT);
    for (const id of CLEAN) await s.fleet.connect(id, false);
    await outage(s);
    const cleanOnB2 = CLEAN.filter((id) => s.fleet.last(id) === 'b2');
    expect(cleanOnB2.length).toBeGreaterThan(0);
    await s.fleet.lost(cleanOnB2);
    for (const id of cleanOnB2) await s.fleet.connect(id, false);
    await recovery(s);

    const counts = await cleanRefill(s);
    // Every clean client follows its stick entry to b1 or b3; the empty b2 gets nothing.
    expect(counts.get('b2'), JSON.stringify([...counts])).toBe(0);
    expect(await stickKeys(s)).toEqual([...PERSISTENT, ...CLEAN].sort());
  });
});

const missing = skipReason('mosquitto');

describe.skipIf(missing !== '')(`session-aware chain with mosquitto keeping sessions across a restart (persistence true)${missing}`, () => {
  it('clients offline during the outage find their session (and queued message) on the restarted broker; no one else moves back', async () => {
    const brokers: HaMosquitto[] = [];
    for (const name of ['mosq1', 'mosq2', 'mosq3']) brokers.push(cleanup.add(await HaMosquitto.start(name, { persistence: true }), (m) => m.close()));
    const [, m2] = brokers as [HaMosquitto, HaMosquitto, HaMosquitto];
    const bal = cleanup.add(await startBalancer({ backends: brokers.map((m) => m.spec), select: SESSION_AWARE, ...HEALTH }), (b) => b.close());
    const stuck = (id: string): Promise<string | undefined> => stuckTo(bal, id);
    const live = new Map<string, MqttClient>();
    const inboxes = new Map<string, Inbox>();
    /** Connects through Tether; returns the CONNACK's session flag and the broker the stick table records. */
    const connect = async (id: string, persistent: boolean): Promise<{ broker: string | undefined; sessionPresent: boolean }> => {
      const inbox = new Inbox();
      inboxes.set(id, inbox);
      const { client, connack } = await pool.connect(bal.url, { clientId: id, clean: !persistent }, inbox);
      expect(connack.returnCode, id).toBe(0);
      live.set(id, client);
      return { broker: await stuck(id), sessionPresent: connack.sessionPresent };
    };
    const disconnect = async (id: string): Promise<void> => {
      const client = live.get(id)!;
      live.delete(id);
      if (client.connected) await pool.disconnect(client);
      else await client.endAsync(true);
    };

    const persistent = Array.from({ length: 9 }, (_, i) => `mp-${i}`);
    const clean = Array.from({ length: 15 }, (_, i) => `mc-${i}`);
    for (const id of persistent) {
      await connect(id, true);
      await live.get(id)!.subscribeAsync(`ms/${id}`, { qos: 1 });
    }
    for (const id of clean) await connect(id, false);
    const home = new Map<string, string>();
    for (const id of persistent) home.set(id, (await stuck(id))!);
    const onM2 = persistent.filter((id) => home.get(id) === 'mosq2');
    expect(onM2).toHaveLength(3);
    // Two of mosq2's persistent clients go offline before the outage and stay away through it;
    // a QoS 1 message for each is queued on mosq2 meanwhile (PUBACK: mosquitto has it).
    const sleepers = onM2.slice(0, 2);
    const mover = onM2[2]!;
    for (const id of sleepers) await disconnect(id);
    const { client: direct } = await pool.connect(`mqtt://127.0.0.1:${m2.port}`, { clientId: 'direct-m2', clean: true });
    for (const id of sleepers) await direct.publishAsync(`ms/${id}`, `kept-for-${id}`, { qos: 1 });
    await pool.disconnect(direct);

    // --- mosq2 is stopped by PID (SIGTERM: it writes its database) and marked down.
    await m2.stop();
    await waitForLog(bal.logs, { msg: 'backend is DOWN', backend: 'mosq2' });
    const awake = persistent.filter((id) => !sleepers.includes(id));
    await waitFor(() => !live.get(mover)!.connected, { what: `${mover} to see its connection close` });
    for (const id of awake) {
      await disconnect(id);
      const { broker, sessionPresent } = await connect(id, true);
      if (id === mover) {
        expect([broker === 'mosq2', sessionPresent], id).toEqual([false, false]);
        await live.get(id)!.subscribeAsync(`ms/${id}`, { qos: 1 });
      } else {
        expect([broker, sessionPresent], id).toEqual([home.get(id), true]);
      }
    }
    const moverHome = (await stuck(mover))!;

    // --- mosq2 starts again on the same port with its database, and is marked up.
    await m2.restart();
    await waitForLog(bal.logs, { msg: 'backend is UP', backend: 'mosq2' });
    // The sleepers' stick entries still name mosq2: they go back to it and find their sessions,
    // with the message queued before the restart.
    for (const id of sleepers) {
      const { broker, sessionPresent } = await connect(id, true);
      expect([broker, sessionPresent], id).toEqual(['mosq2', true]);
      await inboxes.get(id)!.until(`${id}'s message kept across the restart`, (m) => m.some((x) => x.payload.toString() === `kept-for-${id}`));
      await waitFor(() => m2.connections().some((c) => c.clientId === id && c.run === 1), { what: `the restarted mosq2 to log ${id}` });
    }
    // Everyone reconnects once more: nobody moves. In particular the mover does not go back to
    // mosq2, where an old copy of its session sits: its live session is where it moved.
    for (const id of persistent) {
      await disconnect(id);
      const { broker, sessionPresent } = await connect(id, true);
      expect([broker, sessionPresent], id).toEqual([id === mover ? moverHome : home.get(id), true]);
    }
    expect(m2.connections().filter((c) => c.clientId === mover && c.run === 1)).toHaveLength(0);

    // The returning broker refills from clean clients: count, from the brokers' own logs, where 15
    // clean reconnects land.
    const seenBefore = new Map(brokers.map((m) => [m.name, m.connections().filter((c) => clean.includes(c.clientId)).length]));
    for (const id of clean) await disconnect(id);
    for (const id of clean) await connect(id, false);
    const landed = await waitFor(() => {
      const delta = new Map(brokers.map((m) => [m.name, m.connections().filter((c) => clean.includes(c.clientId)).length - seenBefore.get(m.name)!]));
      return [...delta.values()].reduce((a, b) => a + b, 0) === clean.length && delta;
    }, { what: 'the brokers to log 15 clean reconnects' });
    expect(landed.get('mosq2'), JSON.stringify([...landed])).toBeGreaterThanOrEqual(3); // at least 20 %
    const keys = (await tableEntries(bal)).map((e) => e.key).sort();
    expect(keys).toEqual([...persistent].sort());
  });
});
