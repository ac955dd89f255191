import { startEmbeddedBrokers } from '@tether/embedded-broker';
import type { IClientOptions, MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startBalancer, stuckTo, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { startMosquitto } from '../harness/mosquitto.ts';
import { AedesWitness } from '../harness/traffic-aedes-witness.ts';
import { MosquittoLog, nextConnectionOnAny } from '../harness/traffic-mosquitto-log.ts';
import { ClientPool, Inbox } from '../harness/traffic-mqtt-clients.ts';
import { Teardown } from '../harness/traffic-teardown.ts';

/**
 * Protocol levels other than 3.1.1 through Tether. MQTT 5 runs against Debian mosquitto because
 * aedes speaks only 3.1 and 3.1.1 (it refuses protocol level 5 with return code 1); MQTT 3.1 runs
 * against aedes, which reports the level it negotiated. Both sets use two independent brokers, so a
 * client that came back to the wrong one would find no session.
 */

const teardown = new Teardown();
const pool = new ClientPool();

afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

const ROUNDS = 5;

/** Tether's own reading of the CONNECT (debug log), for the connection with this key. */
function sniffedVersions(balancer: TestBalancer, key: string): unknown[] {
  return balancer.logs.filter((l) => l.msg === 'connect sniffed' && l.key === key).map((l) => l.protocolVersion);
}

const noMosquitto = skipReason('mosquitto');

describe.skipIf(noMosquitto !== '')(`MQTT 5 through Tether to two mosquitto brokers${noMosquitto}`, { timeout: 90_000 }, () => {
  async function setup(): Promise<{ balancer: TestBalancer; logs: MosquittoLog[]; ports: Map<string, number> }> {
    const ports = new Map<string, number>();
    const logs: MosquittoLog[] = [];
    for (const name of ['mosq1', 'mosq2']) {
      const m = teardown.add(name, await startMosquitto(), (x) => x.stop());
      logs.push(new MosquittoLog(name, m));
      ports.set(name, m.port);
    }
    const balancer = teardown.add('balancer', await startBalancer({ backends: [...ports].map(([name, port]) => `${name}=127.0.0.1:${port}`) }), (b) => b.close());
    return { balancer, logs, ports };
  }

  it(`a v5 client with session expiry and user properties is sticky, keeps its session over ${ROUNDS} reconnects and gets what it missed`, async () => {
    const { balancer, logs, ports } = await setup();
    const clientId = 'v5-device-1';
    const options: IClientOptions = {
      clientId,
      protocolVersion: 5,
      clean: false, // clean start off: resume the session if the broker has one
      properties: { sessionExpiryInterval: 300, userProperties: { site: 'lab-3', fleet: 'alpha' } },
    };
    const inbox = new Inbox();
    const firstLanding = nextConnectionOnAny(logs, clientId);
    const first = await pool.connect(balancer.url, options, inbox);
    const landed = await firstLanding;
    expect(first.connack.reasonCode).toBe(0);
    expect(first.connack.sessionPresent).toBe(false);
    // The broker negotiated MQTT 5 with clean start off: Tether replayed the CONNECT unchanged.
    expect(landed).toMatchObject({ protocol: 'p5', clean: false });
    expect(sniffedVersions(balancer, clientId)).toEqual([5]);
    const home = landed.broker;
    expect(await stuckTo(balancer, clientId)).toBe(home);
    await first.client.subscribeAsync(`v5/${clientId}/#`, { qos: 1 });

    // The observer is a v5 client straight on the home broker: with independent brokers it is the
    // only place where it can meet the device (see sticky-sessions.test.ts for the reasoning).
    const observerInbox = new Inbox();
    const observer = (await pool.connect(`mqtt://127.0.0.1:${ports.get(home)}`, { clientId: `${clientId}-observer`, protocolVersion: 5, clean: true }, observerInbox)).client;
    await observer.subscribeAsync(`v5-up/${clientId}`, { qos: 1 });

    // v5 publish properties cross Tether both ways untouched.
    await first.client.publishAsync(`v5-up/${clientId}`, 'hello from the device', { qos: 1, properties: { userProperties: { seq: '0' }, contentType: 'text/plain' } });
    await observerInbox.until('the device\'s v5 publish', (m) => m.length >= 1);
    expect(observerInbox.messages[0]!.payload.toString()).toBe('hello from the device');
    expect(observerInbox.messages[0]!.packet.properties).toMatchObject({ userProperties: { seq: '0' }, contentType: 'text/plain' });

    let current: MqttClient = first.client;
    for (let round = 1; round <= ROUNDS; round++) {
      // Wait for the broker to log the disconnect, so the message below is queued for an offline session.
      const gone = logs.find((l) => l.name === home)!.nextLine(`Client ${clientId} disconnected`);
      await pool.disconnect(current);
      await gone;
      await observer.publishAsync(`v5/${clientId}/${round}`, `missed ${round}`, { qos: 1, properties: { userProperties: { round: String(round) } } });

      const landing = nextConnectionOnAny(logs, clientId);
      const again = await pool.connect(balancer.url, options, inbox);
      expect({ round, broker: (await landing).broker }).toEqual({ round, broker: home });
      expect(again.connack.sessionPresent).toBe(true);
      await inbox.until(`round ${round}'s queued message`, (m) => m.some((x) => x.topic === `v5/${clientId}/${round}`));
      const got = inbox.messages.find((x) => x.topic === `v5/${clientId}/${round}`)!;
      expect(got.payload.toString()).toBe(`missed ${round}`);
      expect(got.qos).toBe(1);
      expect(got.packet.properties?.userProperties).toEqual({ round: String(round) });
      current = again.client;
    }

    // The other broker never saw this client at all.
    const other = logs.find((l) => l.name !== home)!;
    expect(other.connectionsOf(clientId)).toEqual([]);
    expect(logs.find((l) => l.name === home)!.connectionsOf(clientId)).toHaveLength(ROUNDS + 1);
    expect(sniffedVersions(balancer, clientId)).toEqual(Array<number>(ROUNDS + 1).fill(5));
  });

  it('a v5 client with session expiry 0 is not persistent: the broker drops its session even though Tether keeps it sticky', async () => {
    // The control for the test above: the same reconnect with sessionExpiryInterval 0 must come
    // back to no session, which shows that `sessionPresent: true` above came from the broker's
    // stored session, not from something Tether or the client made up.
    const { balancer, logs } = await setup();
    const clientId = 'v5-ephemeral-1';
    const options: IClientOptions = { clientId, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 0 } };
    const firstLanding = nextConnectionOnAny(logs, clientId);
    const first = await pool.connect(balancer.url, options);
    const home = (await firstLanding).broker;
    await first.client.subscribeAsync(`v5/${clientId}`, { qos: 1 });
    const gone = logs.find((l) => l.name === home)!.nextLine(`Client ${clientId} disconnected`);
    await pool.disconnect(first.client);
    await gone;

    const landing = nextConnectionOnAny(logs, clientId);
    const again = await pool.connect(balancer.url, options);
    expect((await landing).broker).toBe(home);
    expect(again.connack.sessionPresent).toBe(false);
  });
});

describe('MQTT 3.1 (MQIsdp, level 3) through Tether to independent aedes brokers', { timeout: 60_000 }, () => {
  it(`works end to end and is sticky over ${ROUNDS} reconnects`, async () => {
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(2, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
    const witness = teardown.add('witness', new AedesWitness(brokers), (w) => w.detach());
    const balancer = teardown.add('balancer', await startBalancer({ backends: brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`) }), (b) => b.close());
    // MQTT 3.1 limits client ids to 23 characters.
    const clientId = 'mqisdp-device-1';
    const options: IClientOptions = { clientId, protocolId: 'MQIsdp', protocolVersion: 3, clean: false };

    const inbox = new Inbox();
    const firstLanding = witness.nextLanding(clientId);
    const first = await pool.connect(balancer.url, options, inbox);
    const landed = await firstLanding;
    expect(landed.version).toBe(3);
    expect(first.connack.returnCode).toBe(0);
    expect(first.connack.sessionPresent).toBe(false);
    expect(sniffedVersions(balancer, clientId)).toEqual([3]);
    const home = brokers.find((b) => b.id === landed.broker)!;
    expect(await stuckTo(balancer, clientId)).toBe(home.id);
    await first.client.subscribeAsync(`v31/${clientId}/#`, { qos: 1 });

    // Round trip through Tether on the same connection: publish and receive our own message.
    await first.client.publishAsync(`v31/${clientId}/echo`, 'echo', { qos: 1 });
    await inbox.until('the echo', (m) => m.some((x) => x.topic === `v31/${clientId}/echo`));

    const publisher = (await pool.connect(`mqtt://127.0.0.1:${home.port}`, { clientId: 'mqisdp-publisher', protocolId: 'MQIsdp', protocolVersion: 3 })).client;
    let current: MqttClient = first.client;
    for (let round = 1; round <= ROUNDS; round++) {
      const gone = witness.nextDeparture(clientId);
      await pool.disconnect(current);
      expect((await gone).broker).toBe(home.id);
      await publisher.publishAsync(`v31/${clientId}/${round}`, `missed ${round}`, { qos: 1 });
      const landing = witness.nextLanding(clientId);
      const again = await pool.connect(balancer.url, options, inbox);
      const seen = await landing;
      expect({ round, broker: seen.broker, version: seen.version }).toEqual({ round, broker: home.id, version: 3 });
      expect(again.connack.sessionPresent).toBe(true);
      await inbox.until(`round ${round}'s queued message`, (m) => m.some((x) => x.topic === `v31/${clientId}/${round}` && x.payload.toString() === `missed ${round}`));
      current = again.client;
    }
    expect(new Set(witness.landingsOf(clientId))).toEqual(new Set([home.id]));
  });
});
