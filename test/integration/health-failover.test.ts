import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBalancer, stuckTo, tableEntries, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { HaAedes, startHaBrokers, waitForHolder } from '../harness/ha-aedes.ts';
import { HaMosquitto } from '../harness/ha-mosquitto.ts';
import { Cleanup, counterChanges, logLines, waitFor, waitForLog, within } from '../harness/poll.ts';
import { connectBytes, RawClient } from '../harness/raw-mqtt-client.ts';
import { ClientPool } from '../harness/traffic-mqtt-clients.ts';

/**
 * Failover with real brokers: a backend dies while clients are on it, Tether's health check
 * notices (or has not noticed yet), the broker comes back on the same port. Brokers are aedes
 * instances that can be killed and restarted on their port (test/harness/ha-aedes.ts), and
 * Debian's mosquitto stopped by PID and started again with the same config. Clients are mqtt.js
 * with reconnectPeriod 0: each reconnect is the test's own decision, so every CONNACK is seen.
 */

vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
const clients = new ClientPool();
afterEach(async () => {
  await clients.closeAll();
  await cleanup.run();
});

async function brokers(n: number): Promise<HaAedes[]> {
  return cleanup.add(await startHaBrokers(n), (list) => Promise.all(list.map((b) => b.close())));
}

async function balancer(backends: readonly string[], overrides: Record<string, unknown> = {}): Promise<TestBalancer> {
  return cleanup.add(await startBalancer({ backends, retries: 1, ...overrides }), (b) => b.close());
}

/** Health check settings: tcp every 50 ms, two failures to go down, two passes to come back. */
const FAST_TCP_CHECK = { 'healthCheck.type': 'tcp', 'healthCheck.interval': '50ms', 'healthCheck.timeout': '1s', 'healthCheck.rise': 2, 'healthCheck.fall': 2 };

/** The stick table's backend for `key`, if it has an entry. */

const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** Connects each id in turn (each stays connected), persistent or clean, and returns the clients. */
async function connectAll(b: TestBalancer, list: readonly string[], clean: boolean): Promise<Map<string, MqttClient>> {
  const out = new Map<string, MqttClient>();
  for (const clientId of list) {
    const { client, connack } = await clients.connect(b.url, { clientId, clean });
    expect(connack.returnCode, clientId).toBe(0);
    out.set(clientId, client);
  }
  return out;
}

/** Publishes on `client` to a topic only it subscribes to and waits for the message: the connection works end to end. */
async function roundTrip(client: MqttClient, topic: string): Promise<void> {
  await client.subscribeAsync(topic, { qos: 1 });
  const payload = `ping-${Math.random()}`;
  const got = new Promise<void>((resolve) => {
    const onMessage = (t: string, p: Buffer): void => {
      if (t !== topic || p.toString() !== payload) return;
      client.off('message', onMessage);
      resolve();
    };
    client.on('message', onMessage);
  });
  await client.publishAsync(topic, payload, { qos: 1 });
  await within(got, `the round trip on ${topic}`);
}

describe('a broker killed while its clients are connected', () => {
  it('before the health check notices: clients reconnect onto the survivor with new sessions, new keys connect too, and no client sees a failure', async () => {
    const list = await brokers(2);
    const [b1, b2] = list as [HaAedes, HaAedes];
    // The only check runs at start; the next is an hour away. Whatever happens below, Tether
    // learns it from failed connects (retries + redispatch), not from the health check.
    const bal = await balancer([b1.spec, b2.spec], { 'healthCheck.type': 'tcp', 'healthCheck.interval': '1h' });
    const persistent = ids('fo', 8);
    const sessions = await connectAll(bal, persistent, false);
    for (const id of persistent) await sessions.get(id)!.subscribeAsync(`fo/${id}`, { qos: 1 });
    const home = new Map<string, HaAedes>();
    for (const id of persistent) home.set(id, await waitForHolder(list, id));
    // least-connections alternates while every client stays connected: 4 and 4.
    const onB1 = persistent.filter((id) => home.get(id) === b1);
    const onB2 = persistent.filter((id) => home.get(id) === b2);
    expect([onB1.length, onB2.length]).toEqual([4, 4]);
    for (const id of persistent) expect(await stuckTo(bal, id)).toBe(home.get(id)!.id);

    const before = bal.server.stats.snapshot();
    await b1.kill();
    await waitFor(() => onB1.every((id) => !sessions.get(id)!.connected), { what: "b1's clients to see their connection close" });
    // Tether saw the spliced connections end: b1 has no live connection left, so least-connections
    // will try it first for every new key below (and the stick table for b1's old keys).
    await waitFor(() => bal.server.pool.get('b1')!.activeConnections === 0, { what: 'b1 to have no active connection' });
    expect(onB2.every((id) => sessions.get(id)!.connected)).toBe(true);

    for (const id of onB1) {
      const { connack } = await clients.connect(bal.url, { clientId: id, clean: false });
      expect(connack.returnCode, id).toBe(0);
      // Another, independent broker: the session starts anew there, and the client is told so.
      expect(connack.sessionPresent, id).toBe(false);
      expect((await waitForHolder(list, id)).id).toBe('b2');
      expect(await stuckTo(bal, id)).toBe('b2');
    }
    // Keys Tether has never seen connect as well, each after one refused attempt on b1.
    for (const id of ids('fo-new', 4)) {
      const { connack } = await clients.connect(bal.url, { clientId: id, clean: true });
      expect(connack.returnCode, id).toBe(0);
      expect((await waitForHolder(list, id)).id).toBe('b2');
    }

    const changes = counterChanges(before, bal.server.stats.snapshot());
    // Every first attempt went to b1 and was refused; every retry succeeded on b2.
    expect(changes.upstream_connect_failures).toBe(onB1.length + 4);
    expect(changes.connections_spliced).toBe(onB1.length + 4);
    expect(changes.stick_table_rewrites).toBe(onB1.length);
    expect(changes.connections_rejected).toBeUndefined();
    // The health check never ran again: b1 is still "ready" as far as Tether's pool knows.
    expect(bal.server.pool.get('b1')!.state).toBe('ready');
    expect(logLines(bal.logs, { msg: 'backend is DOWN' })).toHaveLength(0);

    // b2's own clients were never touched: they keep their sessions.
    const stay = onB2[0]!;
    await clients.disconnect(sessions.get(stay)!);
    const again = await clients.connect(bal.url, { clientId: stay, clean: false });
    expect(again.connack.sessionPresent).toBe(true);
    expect((await waitForHolder(list, stay)).id).toBe('b2');
  });

  it('once the health check marks it down, new keys avoid it with no failed connect; back on the same port it is marked up and takes new keys again', async () => {
    const list = await brokers(2);
    const [b1, b2] = list as [HaAedes, HaAedes];
    const bal = await balancer([b1.spec, b2.spec], FAST_TCP_CHECK);
    await b1.kill();
    const down = await waitForLog(bal.logs, { msg: 'backend is DOWN', backend: 'b1' });
    expect(down.reason).toBe('connect failed: ECONNREFUSED (2 checks failed in a row)');
    expect(bal.server.pool.get('b1')!.state).toBe('down');
    expect(bal.server.stats.get('backends_marked_down')).toBe(1);

    const before = bal.server.stats.snapshot();
    const avoiding = ids('avoid', 6);
    await connectAll(bal, avoiding, false);
    for (const id of avoiding) {
      expect((await waitForHolder(list, id)).id).toBe('b2');
      expect(await stuckTo(bal, id)).toBe('b2');
    }
    // No attempt on b1 at all: it is not offered to the strategies any more.
    expect(counterChanges(before, bal.server.stats.snapshot()).upstream_connect_failures).toBeUndefined();

    await b1.restart();
    expect(b1.port).toBe(Number(bal.server.pool.get('b1')!.port));
    const up = await waitForLog(bal.logs, { msg: 'backend is UP', backend: 'b1' });
    expect(up.reason).toBe('2 tcp checks passed');
    expect(bal.server.pool.get('b1')!.state).toBe('ready');
    expect(bal.server.stats.get('backends_marked_up')).toBe(1);

    // b2 holds 6 live connections, b1 none: least-connections gives b1 every one of 4 new keys.
    const fresh = ids('fresh', 4);
    await connectAll(bal, fresh, false);
    for (const id of fresh) expect((await waitForHolder(list, id)).id).toBe('b1');
    expect(b1.landings.filter((l) => l.incarnation === 2).map((l) => l.clientId)).toEqual(expect.arrayContaining(fresh));
    expect(counterChanges(before, bal.server.stats.snapshot()).upstream_connect_failures).toBeUndefined();
    expect(b2.holds('fresh-0')).toBe(false);
  });
});

describe('onMarkedDown', () => {
  /**
   * The broker stops accepting (checks are refused) while the connections it has go on working:
   * the only thing that can close them is Tether acting on the health verdict.
   */
  async function stopAccepting(mode: 'keep' | 'shutdown-sessions'): Promise<{ bal: TestBalancer; b1: HaAedes; onB1: MqttClient[]; onB2: MqttClient[] }> {
    const list = await brokers(2);
    const [b1, b2] = list as [HaAedes, HaAedes];
    const bal = await balancer([b1.spec, b2.spec], { ...FAST_TCP_CHECK, 'healthCheck.onMarkedDown': mode });
    const connected = await connectAll(bal, ids(mode, 6), true);
    const onB1: MqttClient[] = [];
    const onB2: MqttClient[] = [];
    for (const [id, client] of connected) ((await waitForHolder(list, id)) === b1 ? onB1 : onB2).push(client);
    expect([onB1.length, onB2.length]).toEqual([3, 3]);
    expect(b2.running).toBe(true);
    b1.stopListening();
    return { bal, b1, onB1, onB2 };
  }

  it('shutdown-sessions closes the live client connections of the backend marked down (reason backend_marked_down), and only those', async () => {
    const { bal, b1, onB1, onB2 } = await stopAccepting('shutdown-sessions');
    const down = await waitForLog(bal.logs, { msg: 'backend is DOWN', backend: 'b1' });
    expect(down.closedConnections).toBe(3);
    await waitFor(() => onB1.every((c) => !c.connected), { what: "b1's clients to be disconnected by Tether" });
    const closed = await waitForLog(bal.logs, { msg: 'connection closed', backend: 'b1', reason: 'backend_marked_down' }, 3);
    expect(closed.strategy).toBeDefined();
    expect(logLines(bal.logs, { msg: 'connection closed', backend: 'b1' }).every((l) => l.reason === 'backend_marked_down')).toBe(true);
    // The broker side of those connections went too, and the pool counts none.
    await waitFor(() => b1.connectionCount === 0, { what: 'b1 to lose its client connections' });
    expect(bal.server.pool.get('b1')!.activeConnections).toBe(0);
    // b2's clients are untouched and still work.
    expect(onB2.every((c) => c.connected)).toBe(true);
    await roundTrip(onB2[0]!, 'after-shutdown/b2');
    expect(logLines(bal.logs, { msg: 'connection closed', backend: 'b2' })).toHaveLength(0);
  });

  it('keep (the default) leaves them connected and working through further failed checks', async () => {
    const { bal, onB1 } = await stopAccepting('keep');
    const down = await waitForLog(bal.logs, { msg: 'backend is DOWN', backend: 'b1' });
    expect(down.closedConnections).toBe(0);
    const failures = bal.server.stats.get('health_check_failures');
    await waitFor(() => bal.server.stats.get('health_check_failures') >= failures + 3, { what: 'three more failed checks' });
    expect(onB1.every((c) => c.connected)).toBe(true);
    // A message published on a kept connection comes back through the same broker.
    await roundTrip(onB1[0]!, 'after-keep/b1');
    expect(logLines(bal.logs, { msg: 'connection closed', backend: 'b1' })).toHaveLength(0);
    expect(bal.server.pool.get('b1')!.activeConnections).toBe(3);
  });
});

describe('no backend left', () => {
  it('a client with a valid CONNECT gets CONNACK "server unavailable" without Tether trying any broker; one back, clients connect again', async () => {
    const list = await brokers(2);
    const [b1, b2] = list as [HaAedes, HaAedes];
    const bal = await balancer([b1.spec, b2.spec], { ...FAST_TCP_CHECK, 'healthCheck.fall': 1 });
    await b1.kill();
    await b2.kill();
    await waitForLog(bal.logs, { msg: 'backend is DOWN', backend: 'b1' });
    await waitForLog(bal.logs, { msg: 'backend is DOWN', backend: 'b2' });

    const raw = cleanup.add(await RawClient.connect(bal.port), (c) => c.destroy());
    await raw.write(connectBytes('nowhere', 4));
    expect((await raw.waitForPacket('connack')).returnCode).toBe(3);
    expect((await raw.waitClosed()).error).toBeUndefined();
    const rejected = await waitForLog(bal.logs, { msg: 'connection rejected', reason: 'no_backend' });
    expect(rejected.err).toMatch(/no backend is ready \(b1 down, b2 down\)/);
    // mqtt.js sees the same refusal as an error naming it.
    await expect(clients.connect(bal.url, { clientId: 'nowhere-mqttjs' })).rejects.toThrow(/unavailable/i);
    // Health already knew: no broker was even tried.
    expect(bal.server.stats.get('upstream_connect_failures')).toBe(0);
    expect(bal.server.stats.get('rejected_no_backend')).toBe(2);

    await b2.restart();
    await waitForLog(bal.logs, { msg: 'backend is UP', backend: 'b2' });
    const { connack } = await clients.connect(bal.url, { clientId: 'somewhere' });
    expect(connack.returnCode).toBe(0);
    expect(await waitForHolder(list, 'somewhere')).toBe(b2);
  });
});

const missing = ['mosquitto', 'mosquitto_passwd'].map(skipReason).join('');

describe.skipIf(missing !== '')(`mqtt health check against mosquitto${missing}`, () => {
  async function mosquitto(name: string, options: Parameters<typeof HaMosquitto.start>[1] = {}): Promise<HaMosquitto> {
    return cleanup.add(await HaMosquitto.start(name, options), (m) => m.close());
  }

  it('mosquitto stopped by PID is marked down; its clients move with new sessions; started again on the same port it is marked up and gets new keys', async () => {
    const m1 = await mosquitto('mosq1');
    const m2 = await mosquitto('mosq2');
    const bal = await balancer([m1.spec, m2.spec], { ...FAST_TCP_CHECK, 'healthCheck.type': 'mqtt', 'healthCheck.interval': '100ms' });
    // The check speaks MQTT: each mosquitto logs the check's client connecting.
    await waitFor(() => m1.connections().some((c) => c.clientId === 'tether-health-check') && m2.connections().some((c) => c.clientId === 'tether-health-check'), { what: 'both mosquittos to log an mqtt health check' });

    const persistent = ids('mq', 4);
    const sessions = await connectAll(bal, persistent, false);
    const entries = await tableEntries(bal);
    const onM1 = persistent.filter((id) => entries.find((e) => e.key === id)?.backend === 'mosq1');
    expect(onM1).toHaveLength(2);
    // mosquitto's own log agrees with the table.
    for (const id of onM1) await waitFor(() => m1.connections().some((c) => c.clientId === id && !c.clean), { what: `mosq1 to log ${id}` });

    await m1.stop();
    const down = await waitForLog(bal.logs, { msg: 'backend is DOWN', backend: 'mosq1' });
    expect(down.reason).toBe('connect failed: ECONNREFUSED (2 checks failed in a row)');
    await waitFor(() => onM1.every((id) => !sessions.get(id)!.connected), { what: "mosq1's clients to see the close" });

    const before = bal.server.stats.snapshot();
    for (const id of onM1) {
      const { connack } = await clients.connect(bal.url, { clientId: id, clean: false });
      expect(connack.sessionPresent, id).toBe(false);
      expect(await stuckTo(bal, id)).toBe('mosq2');
      await waitFor(() => m2.connections().some((c) => c.clientId === id), { what: `mosq2 to log ${id}` });
    }
    expect(counterChanges(before, bal.server.stats.snapshot())).toMatchObject({ stick_table_redispatches: 2, stick_table_rewrites: 2 });
    expect(bal.server.stats.get('upstream_connect_failures')).toBe(0);

    await m1.restart();
    const up = await waitForLog(bal.logs, { msg: 'backend is UP', backend: 'mosq1' });
    expect(up.reason).toBe('2 mqtt checks passed');
    // mosq2 holds 4 clients, mosq1 none: the next 3 new keys all go to mosq1, as its new log shows.
    const fresh = ids('mq-fresh', 3);
    await connectAll(bal, fresh, true);
    for (const id of fresh) {
      expect(await stuckTo(bal, id)).toBe('mosq1');
      await waitFor(() => m1.connections().some((c) => c.clientId === id && c.run === 1), { what: `the restarted mosq1 to log ${id}` });
    }
    expect(bal.server.stats.get('upstream_connect_failures')).toBe(0);
  });

  it('sends the configured user name and password: right ones pass, wrong ones mark the broker down with the CONNACK refusal', async () => {
    const m = await mosquitto('mosq-auth', { users: { checker: 'right-pass' } });
    const good = await balancer([m.spec], { ...FAST_TCP_CHECK, 'healthCheck.type': 'mqtt', 'healthCheck.username': 'checker', 'healthCheck.password': 'right-pass', 'healthCheck.clientId': 'hc-good' });
    const bad = await balancer([m.spec], { ...FAST_TCP_CHECK, 'healthCheck.type': 'mqtt', 'healthCheck.username': 'checker', 'healthCheck.password': 'wrong-pass', 'healthCheck.clientId': 'hc-bad' });
    const down = await waitForLog(bad.logs, { msg: 'backend is DOWN', backend: 'mosq-auth' });
    // mosquitto answers a 3.1.1 CONNECT with bad credentials with 4 or 5 depending on version.
    expect(down.reason).toMatch(/^CONNACK refused: (4 \(bad user name or password\)|5 \(not authorized\)) \(2 checks failed in a row\)$/);
    expect(bad.server.pool.get('mosq-auth')!.state).toBe('down');
    // The good checker has passed checks by now (mosquitto logged it several times) and never went down.
    await waitFor(() => m.connections().filter((c) => c.clientId === 'hc-good').length >= 3, { what: 'mosquitto to accept three good checks' });
    expect(logLines(good.logs, { msg: 'backend is DOWN' })).toHaveLength(0);
    expect(good.server.pool.get('mosq-auth')!.state).toBe('ready');
    // The password itself never reaches Tether's log.
    expect(JSON.stringify([...good.logs, ...bad.logs])).not.toContain('right-pass');
  });
});
