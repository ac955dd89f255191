import { connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllClients, connectClient, disconnect } from '../../cli/test/helpers/mqtt.ts';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';
import { Cleanup, logLines, waitFor, waitForLog } from '../harness/poll.ts';
import { promtoolProblems, scrape, scrapeOk, type Scrape } from '../harness/prometheus.ts';

/**
 * Prometheus metrics and the CONNACK check, as an operator sees them: a balancer in this process
 * in front of Debian's mosquitto, real MQTT clients (mqtt.js), and GET /metrics read by a
 * Prometheus text parser (and linted by Prometheus's own promtool).
 */

const T = 60_000;
const missing = skipReason('mosquitto') + skipReason('promtool');
const cleanup = new Cleanup();

afterEach(async () => {
  await closeAllClients();
  await cleanup.run();
}, T);

async function mosquitto(options: Parameters<typeof startMosquitto>[0] = {}): Promise<Mosquitto> {
  return cleanup.add(await startMosquitto(options), (m) => m.stop());
}

async function balancer(overrides: Record<string, unknown>): Promise<TestBalancer> {
  return cleanup.add(await startBalancer({ admin: '127.0.0.1:0', ...overrides }), (b) => b.close());
}

const adminMetrics = (b: TestBalancer): string => `http://127.0.0.1:${b.server.adminAddress!.port}/metrics`;

/** Scrapes until `check` holds (the close of a connection is seen by the balancer a moment after the client's). */
function scrapeUntil(url: string, check: (s: Scrape) => boolean, what: string): Promise<Scrape> {
  return waitFor(async () => {
    const s = await scrapeOk(url);
    return check(s) && s;
  }, { what });
}

describe(`GET /metrics after real connections${missing}`, () => {
  it.skipIf(missing)('counts connections by listener and backend, live bytes, rejections by reason, backend gauges and the stick table', async () => {
    const [m1, m2] = [await mosquitto(), await mosquitto()];
    const b = await balancer({
      backends: [{ name: 'm1', address: `127.0.0.1:${m1.port}`, weight: 3 }, { name: 'm2', address: `127.0.0.1:${m2.port}` }],
      'metrics.listen': '127.0.0.1:0',
    });
    const ids = ['mx-0', 'mx-1', 'mx-2', 'mx-3'];
    for (const clientId of ids) await disconnect((await connectClient(b.url, { clientId, clean: true })).client);
    // Every client again: the stick table remembers them all.
    for (const clientId of ids) await disconnect((await connectClient(b.url, { clientId, clean: true })).client);
    const url = adminMetrics(b);
    let s = await scrapeUntil(url, (x) => x.sum('tether_backend_connections_total') === 8 && x.sum('tether_backend_active_connections') === 0, '8 closed connections');
    expect(s.value('tether_connections_accepted_total', { listener: 'main' })).toBe(8);
    expect(s.value('tether_stick_table_misses_total')).toBe(4);
    expect(s.value('tether_stick_table_hits_total')).toBe(4);
    expect(s.value('tether_table_entries', { table: 'stick-table' })).toBe(4);
    expect(s.value('tether_table_size', { table: 'stick-table' })).toBe(100_000);
    expect(s.histogram('tether_sniff_duration_seconds', { listener: 'main' })?.count).toBe(8);
    const connects = (s.histogram('tether_upstream_connect_duration_seconds', { backend: 'm1' })?.count ?? 0) + (s.histogram('tether_upstream_connect_duration_seconds', { backend: 'm2' })?.count ?? 0);
    expect(connects).toBe(8);
    // Each connection's CONNECT and DISCONNECT reached a broker, its CONNACK came back.
    const closed = logLines(b.logs, { msg: 'connection closed' });
    expect(s.sum('tether_backend_bytes_in_total')).toBe(closed.reduce((n, l) => n + Number(l.bytesIn), 0));
    expect(s.sum('tether_backend_bytes_out_total')).toBe(closed.reduce((n, l) => n + Number(l.bytesOut), 0));
    expect(s.value('tether_backend_weight', { backend: 'm1' })).toBe(3);
    expect(s.value('tether_backend_up', { backend: 'm2' })).toBe(1);

    // A long-lived connection shows its traffic while it lasts.
    const held = await connectClient(b.url, { clientId: 'mx-held', clean: true });
    const before = (await scrapeOk(url)).sum('tether_backend_bytes_in_total');
    await held.client.publishAsync('t/big', Buffer.alloc(5000, 1), { qos: 1 });
    s = await scrapeUntil(url, (x) => x.sum('tether_backend_bytes_in_total') >= before + 5000, 'the held connection\'s 5000 bytes');
    expect(s.sum('tether_backend_active_connections')).toBe(1);

    // Not MQTT: rejected, counted under the reason its log line gives.
    const raw = tcpConnect(b.port, '127.0.0.1');
    raw.on('error', () => {});
    raw.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const rejected = await waitForLog(b.logs, { msg: 'connection rejected' });
    s = await scrapeUntil(url, (x) => x.value('tether_connections_rejected_total', { listener: 'main', reason: String(rejected.reason) }) === 1, 'the rejection');
    expect(s.value('tether_connections_accepted_total', { listener: 'main' })).toBe(10);

    // A state set at runtime shows on the next scrape.
    const set = await fetch(`http://127.0.0.1:${b.server.adminAddress!.port}/backends/m2/state`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: 'drain' }) });
    expect(set.status).toBe(200);
    s = await scrapeOk(url);
    expect(s.value('tether_backend_state', { backend: 'm2', state: 'drain' })).toBe(1);
    expect(s.value('tether_backend_state', { backend: 'm2', state: 'ready' })).toBe(0);

    // The metrics listener serves the same metrics on its own port.
    const own = await scrape(`http://127.0.0.1:${b.server.metricsAddress!.port}/metrics`);
    expect(own.status).toBe(200);
    expect(own.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(own.scrape!.value('tether_connections_accepted_total', { listener: 'main' })).toBe(10);
    expect(b.server.metricsAddress!.port).not.toBe(b.server.adminAddress!.port);
    expect((await fetch(`http://127.0.0.1:${b.server.metricsAddress!.port}/table`)).status).toBe(404);
    expect(b.logs.find((l) => l.msg === 'tether listening')?.metrics).toBe(`http://127.0.0.1:${b.server.metricsAddress!.port}/metrics`);

    // Prometheus's own linter finds nothing to say about any of them.
    expect(promtoolProblems(own.body)).toEqual([]);
    await disconnect(held.client);
  }, T);

  it.skipIf(missing)('counts health checks by backend and result, and shows a backend that fails them as down', async () => {
    const [m1, m2] = [await mosquitto(), await mosquitto()];
    const b = await balancer({ backends: [`m1=127.0.0.1:${m1.port}`, `m2=127.0.0.1:${m2.port}`], 'healthCheck.type': 'mqtt', 'healthCheck.interval': '100ms', 'healthCheck.fall': 2 });
    const url = adminMetrics(b);
    await scrapeUntil(url, (x) => (x.value('tether_health_checks_total', { backend: 'm2', result: 'pass' }) ?? 0) >= 2, 'two passed checks of m2');
    await m2.stop();
    const s = await scrapeUntil(url, (x) => x.value('tether_backend_up', { backend: 'm2' }) === 0, 'm2 down');
    expect(s.value('tether_health_checks_total', { backend: 'm2', result: 'fail' })).toBeGreaterThanOrEqual(2);
    expect(s.value('tether_backend_state', { backend: 'm2', state: 'down' })).toBe(1);
    expect(s.value('tether_backend_up', { backend: 'm1' })).toBe(1);
    expect(s.value('tether_health_checks_total', { backend: 'm1', result: 'fail' })).toBe(0);
  }, T);

  it('turned off: no /metrics (404 that says why), and the close line still carries the CONNACK', async () => {
    const { startHaBrokers } = await import('../harness/ha-aedes.ts');
    const brokers = await startHaBrokers(1);
    cleanup.add(brokers, (list) => Promise.all(list.map((x) => x.close())));
    const b = await balancer({ backends: brokers.map((x) => x.spec), 'metrics.enabled': false });
    const r = await fetch(adminMetrics(b));
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({ error: 'metrics are turned off (metrics.enabled: false)' });
    expect(b.server.metrics).toBeUndefined();
    await disconnect((await connectClient(b.url, { clientId: 'off-1', clean: true })).client);
    const line = await waitForLog(b.logs, { msg: 'connection closed' });
    expect(line).toMatchObject({ mqtt: { clientId: 'off-1' }, connack: { code: 0, reason: 'accepted', sessionPresent: false } });
  }, T);
});

describe(`Stickiness checked against the broker's CONNACK${missing}`, () => {
  it.skipIf(missing)('a broker restarted without persistence answers the remembered client without its session: a miss, counted and logged; the next reconnect is a hit', async () => {
    let broker = await mosquitto();
    const port = broker.port;
    const b = await balancer({ backends: [`m1=127.0.0.1:${port}`] });
    const url = adminMetrics(b);
    const clientId = 'sticky-session-1';
    const first = await connectClient(b.url, { clientId, clean: false });
    expect(first.connack.sessionPresent).toBe(false);
    await first.client.subscribeAsync('s/#', { qos: 1 });
    await disconnect(first.client);
    // Remembered, and the broker holds the session: a hit.
    const second = await connectClient(b.url, { clientId, clean: false });
    expect(second.connack.sessionPresent).toBe(true);
    await disconnect(second.client);
    let s = await scrapeUntil(url, (x) => x.value('tether_stickiness_checks_total', { backend: 'm1' }) === 1, 'one stickiness check');
    expect(s.value('tether_stickiness_misses_total', { backend: 'm1' })).toBe(0);

    // The broker restarts on the same port with no persistence: the session is gone.
    await broker.stop();
    broker = await mosquitto({ port });
    const third = await connectClient(b.url, { clientId, clean: false });
    expect(third.connack.sessionPresent).toBe(false);
    const miss = await waitForLog(b.logs, { msg: 'stickiness miss: the remembered backend accepted a client that resumes its session, without the session (session present 0)' });
    expect(miss).toMatchObject({ backend: 'm1', strategy: 'stick-table', key: clientId, mqtt: { clientId }, level: 30 });
    s = await scrapeOk(url);
    expect(s.value('tether_stickiness_misses_total', { backend: 'm1' })).toBe(1);
    expect(s.value('tether_stickiness_checks_total', { backend: 'm1' })).toBe(2);
    await third.client.subscribeAsync('s/#', { qos: 1 });
    await disconnect(third.client);

    // The session is there again: a hit, and no second miss line.
    const fourth = await connectClient(b.url, { clientId, clean: false });
    expect(fourth.connack.sessionPresent).toBe(true);
    await disconnect(fourth.client);
    s = await scrapeUntil(url, (x) => x.value('tether_stickiness_checks_total', { backend: 'm1' }) === 3, 'a third check');
    expect(s.value('tether_stickiness_misses_total', { backend: 'm1' })).toBe(1);
    expect(logLines(b.logs, { msg: miss.msg })).toHaveLength(1);
    // The close lines say what each CONNACK said, with the client id; one line per connection.
    const closed = await waitFor(() => {
      const lines = logLines(b.logs, { msg: 'connection closed' });
      return lines.length === 4 && lines;
    }, { what: 'four connection closed lines' });
    expect(closed.map((l) => (l.connack as { sessionPresent: boolean }).sessionPresent)).toEqual([false, true, false, true]);
    for (const l of closed) expect(l).toMatchObject({ mqtt: { clientId }, connack: { code: 0, reason: 'accepted' } });
  }, T);

  it.skipIf(missing)('a CONNACK that refuses the client is counted by backend and code, for MQTT 3.1.1 and MQTT 5', async () => {
    const broker = await mosquitto({ users: { alice: 'right' } });
    const b = await balancer({ backends: [`auth=127.0.0.1:${broker.port}`] });
    const refusedCode = async (protocolVersion: 4 | 5): Promise<number> => {
      const err = await connectClient(b.url, { clientId: `wrong-${protocolVersion}`, username: 'alice', password: 'wrong', protocolVersion }).then(
        () => { throw new Error('the broker accepted a wrong password'); },
        (e: unknown) => e as { code?: number },
      );
      expect(typeof err.code).toBe('number');
      return err.code!;
    };
    const v4 = await refusedCode(4);
    const v5 = await refusedCode(5);
    // Whatever mosquitto chose, each is a refusal of its protocol level.
    expect([4, 5]).toContain(v4);
    expect([0x86, 0x87]).toContain(v5);
    const names: Record<number, string> = { 4: 'bad_user_name_or_password', 5: 'not_authorized', 0x86: 'bad_user_name_or_password', 0x87: 'not_authorized' };
    const s = await scrapeUntil(adminMetrics(b), (x) => x.sum('tether_connack_refused_total') === 2, 'two refusals');
    expect(s.value('tether_connack_refused_total', { backend: 'auth', code: String(v4) })).toBe(1);
    expect(s.series('tether_connack_refused_total').find((x) => x.labels.code === String(v4))?.labels.reason).toBe(names[v4]);
    expect(s.value('tether_connack_refused_total', { backend: 'auth', code: String(v5), reason: names[v5]! })).toBe(1);
    // Accepted with the right password: not a refusal.
    await disconnect((await connectClient(b.url, { clientId: 'right', username: 'alice', password: 'right' })).client);
    const closed = await waitFor(() => {
      const lines = logLines(b.logs, { msg: 'connection closed' });
      return lines.length === 3 && lines;
    }, { what: 'three connection closed lines' });
    expect(closed.map((l) => l.connack)).toEqual(expect.arrayContaining([
      { code: v4, reason: names[v4], sessionPresent: false },
      { code: v5, reason: names[v5], sessionPresent: false },
      { code: 0, reason: 'accepted', sessionPresent: false },
    ]));
    expect((await scrapeOk(adminMetrics(b))).sum('tether_connack_refused_total')).toBe(2);
  }, T);
});
