import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { AedesWitness } from '../harness/traffic-aedes-witness.ts';
import { startBalancer, tableEntries, type TestBalancer } from '../harness/balancer.ts';
import { ClientPool, Inbox } from '../harness/traffic-mqtt-clients.ts';
import { Teardown } from '../harness/traffic-teardown.ts';

/**
 * Stickiness is only worth something when landing elsewhere loses state, so every test here runs
 * over two *independent* aedes brokers (cluster: false): each keeps its own sessions and routes
 * only its own messages. Which broker a client reached is read from the brokers' own events
 * (AedesWitness), not from Tether.
 */

const ROUNDS = 20;

const teardown = new Teardown();
const pool = new ClientPool();

afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

async function setup(select: string[]): Promise<{ brokers: EmbeddedBroker[]; witness: AedesWitness; balancer: TestBalancer }> {
  const brokers = teardown.add('brokers', await startEmbeddedBrokers(2, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
  const witness = teardown.add('witness', new AedesWitness(brokers), (w) => w.detach());
  // Backend names equal the aedes broker ids, so the stick table and the witness speak of the same names.
  const balancer = teardown.add('balancer', await startBalancer({ backends: brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`), select }), (b) => b.close());
  return { brokers, witness, balancer };
}

/** What one reconnect of the subscriber looked like. */
interface Round {
  readonly broker: string;
  readonly sessionPresent: boolean;
  /** Whether the QoS 1 messages published while it was away reached it. */
  readonly gotMissedMessages: boolean;
}

/**
 * A persistent subscriber (clean=false, QoS 1) connects through Tether, then `ROUNDS` times:
 * disconnects, has two QoS 1 messages published for it while it is away, and reconnects.
 *
 * The messages are published by an mqtt.js client connected *directly* to the broker that took the
 * first connection (its "home"), not through Tether: with independent brokers only that broker
 * holds the subscription, and a publisher through Tether would land by its own key (least
 * connections picks the emptier broker for a new key), which would test the publisher's routing,
 * not the subscriber's. Publishing at home makes the messages a pure probe of the session: they
 * reach the subscriber only if it comes back to the broker that queued them.
 *
 * The routine only observes; the callers decide what must hold. When a reconnect lands away from
 * home it does not wait for the messages (they cannot come), so the control test stays fast.
 */
async function reconnectRounds(balancer: TestBalancer, brokers: EmbeddedBroker[], witness: AedesWitness, clientId: string): Promise<{ home: string; rounds: Round[] }> {
  const inbox = new Inbox();
  const topicRoot = `sticky/${clientId}`;
  const firstLanding = witness.nextLanding(clientId);
  const first = await pool.connect(balancer.url, { clientId, clean: false }, inbox);
  // Fresh brokers: nobody can have a session for this id yet, so a `true` here would be a bug.
  expect(first.connack.sessionPresent).toBe(false);
  const home = (await firstLanding).broker;
  await first.client.subscribeAsync(`${topicRoot}/#`, { qos: 1 });

  const homeBroker = brokers.find((b) => b.id === home)!;
  const publisher = (await pool.connect(`mqtt://127.0.0.1:${homeBroker.port}`, { clientId: `${clientId}-direct-publisher`, clean: true })).client;

  const rounds: Round[] = [];
  let current: MqttClient = first.client;
  let currentBroker = home;
  for (let round = 1; round <= ROUNDS; round++) {
    // Wait until the broker itself has closed the session's connection: only then are messages for
    // it queued as offline messages rather than sent down a connection that is going away.
    const departed = witness.nextDeparture(clientId);
    await pool.disconnect(current);
    expect((await departed).broker).toBe(currentBroker);

    const expected = [`round ${round} message a`, `round ${round} message b`];
    // publishAsync at QoS 1 resolves on PUBACK, and aedes acknowledges only after it has put the
    // message in every matching persistent session: after this loop the messages are queued.
    for (const text of expected) await publisher.publishAsync(`${topicRoot}/${round}`, text, { qos: 1 });

    const landing = witness.nextLanding(clientId);
    const again = await pool.connect(balancer.url, { clientId, clean: false }, inbox);
    currentBroker = (await landing).broker;
    let gotMissedMessages = false;
    if (currentBroker === home) {
      await inbox.until(`round ${round}'s queued messages`, (msgs) => expected.every((t) => msgs.some((m) => m.topic === `${topicRoot}/${round}` && m.payload.toString() === t && m.qos === 1)));
      gotMissedMessages = true;
    }
    rounds.push({ broker: currentBroker, sessionPresent: again.connack.sessionPresent, gotMissedMessages });
    current = again.client;
  }
  await pool.disconnect(current);
  return { home, rounds };
}

describe('sticky persistent sessions over independent brokers', { timeout: 90_000 }, () => {
  it(`a clean=false subscriber reconnecting ${ROUNDS} times always returns to its broker, finds its session and gets what it missed`, async () => {
    const { brokers, witness, balancer } = await setup(['stick-table', 'least-connections']);
    const clientId = 'sticky-subscriber-1';
    const { home, rounds } = await reconnectRounds(balancer, brokers, witness, clientId);

    expect(rounds).toHaveLength(ROUNDS);
    expect(rounds.map((r) => r.broker)).toEqual(Array<string>(ROUNDS).fill(home));
    expect(rounds.map((r) => r.sessionPresent)).toEqual(Array<boolean>(ROUNDS).fill(true));
    expect(rounds.map((r) => r.gotMissedMessages)).toEqual(Array<boolean>(ROUNDS).fill(true));
    // The brokers agree: every connection of this id, the first included, was on `home` only.
    expect(new Set(witness.landingsOf(clientId))).toEqual(new Set([home]));
    expect(witness.landingsOf(clientId)).toHaveLength(ROUNDS + 1);

    // Tether's own account matches the brokers': one entry, pointing at home, matched on each reconnect.
    const entry = (await tableEntries(balancer)).find((e) => e.key === clientId);
    expect(entry?.backend).toBe(home);
    expect(entry!.hits).toBeGreaterThanOrEqual(ROUNDS);
  });

  it('control: with least-connections alone (no stick table) the same reconnects spread over both brokers and lose the session', async () => {
    const { brokers, witness, balancer } = await setup(['least-connections']);
    const clientId = 'unsticky-subscriber-1';
    const { home, rounds } = await reconnectRounds(balancer, brokers, witness, clientId);

    // The routine above is identical; only the strategy chain differs. If it were blind to wrong
    // landings, this test could not pass.
    expect(await balancer.server.strategies.tables()).toEqual([]);
    const visited = new Set(rounds.map((r) => r.broker));
    expect(visited).toEqual(new Set(brokers.map((b) => b.id)));
    const away = rounds.filter((r) => r.broker !== home);
    expect(away.length).toBeGreaterThan(0);
    // A broker that never held the session says so (independent brokers really lose it) ...
    expect(away.some((r) => !r.sessionPresent)).toBe(true);
    // ... and the messages queued at home did not follow the client there.
    expect(away.every((r) => !r.gotMissedMessages)).toBe(true);
  });

  it('several persistent clients, reconnecting interleaved, are spread over both brokers and each keeps its own', async () => {
    const { brokers, witness, balancer } = await setup(['stick-table', 'least-connections']);
    const ids = ['fleet-a', 'fleet-b', 'fleet-c', 'fleet-d'];
    const homes = new Map<string, string>();
    const clients = new Map<string, MqttClient>();

    // All four connect at once, as a fleet would after a restart: least-connections places the
    // new keys, and the table must remember each placement separately.
    await Promise.all(
      ids.map(async (clientId) => {
        const landing = witness.nextLanding(clientId);
        const { client, connack } = await pool.connect(balancer.url, { clientId, clean: false });
        expect(connack.sessionPresent).toBe(false);
        await client.subscribeAsync(`fleet/${clientId}`, { qos: 1 });
        homes.set(clientId, (await landing).broker);
        clients.set(clientId, client);
      }),
    );
    // Four live connections on two equal backends: least-connections must have used both.
    expect(new Set(homes.values())).toEqual(new Set(brokers.map((b) => b.id)));

    for (let round = 1; round <= 5; round++) {
      for (const clientId of ids) {
        const departed = witness.nextDeparture(clientId);
        await pool.disconnect(clients.get(clientId)!);
        await departed;
        const landing = witness.nextLanding(clientId);
        const { client, connack } = await pool.connect(balancer.url, { clientId, clean: false });
        expect({ clientId, round, broker: (await landing).broker }).toEqual({ clientId, round, broker: homes.get(clientId) });
        expect(connack.sessionPresent).toBe(true);
        clients.set(clientId, client);
      }
    }

    const entries = await tableEntries(balancer);
    expect(Object.fromEntries(entries.map((e) => [e.key, e.backend]))).toEqual(Object.fromEntries(homes));
  });
});
