import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendPool, type BackendDefinition, type HealthCheckType } from '../../src/backend/backend-pool.ts';
import { HealthChecker, type HealthCheckSettings } from '../../src/backend/health-checker.ts';
import { createLogger } from '../../src/logger.ts';
import { Stats } from '../../src/stats.ts';
// Shared with the integration tests: a real MQTT server on loopback whose answers follow a script.
import { ScriptedBroker, type Reply } from '../../../test/harness/ha-scripted-broker.ts';
import { waitFor } from '../../../test/harness/poll.ts';

/**
 * HealthChecker with its real parts: a BackendPool, the real probe over loopback TCP, and brokers
 * that pass or fail on exactly the checks a test chooses. Intervals are tens of milliseconds; the
 * tests wait for conditions (a log line, a number of checks seen by the broker), never for time.
 */

const PASS: Reply = { connack: 0 };
const FAIL: Reply = { connack: 5 };

const BASE: HealthCheckSettings = {
  type: 'mqtt', intervalMs: 20, timeoutMs: 1000, rise: 2, fall: 3, onMarkedDown: 'keep', clientId: 'tether-health-check', username: '', password: '',
};

interface LogLine extends Record<string, unknown> {
  /** health_check_failures at the moment the line was written. */
  readonly failuresThen: number;
  /** How many connections each broker had seen at the moment the line was written. */
  readonly seenThen: Record<string, number>;
}

interface Rig {
  readonly pool: BackendPool;
  readonly stats: Stats;
  readonly checker: HealthChecker;
  readonly lines: LogLine[];
  readonly brokers: Record<string, ScriptedBroker>;
  /** Log lines with this message (and backend, if given). */
  logged(msg: 'backend is DOWN' | 'backend is UP', backend?: string): LogLine[];
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/**
 * A checker over one backend per scripted broker (named by the keys of `scripts`). Log lines are
 * captured with the counters and per-broker connection counts of the moment they were written,
 * which is the moment the checker decided: that is how a test knows the decision came on exactly
 * the fall-th (or rise-th) check, not one earlier or later.
 */
async function rig(
  scripts: Record<string, (index: number) => Reply>,
  settings: Partial<HealthCheckSettings> = {},
  options: { types?: Record<string, HealthCheckType>; defs?: Partial<BackendDefinition> } = {},
): Promise<Rig> {
  const brokers: Record<string, ScriptedBroker> = {};
  for (const [id, script] of Object.entries(scripts)) {
    const broker = await ScriptedBroker.start(script);
    cleanups.push(() => broker.close());
    brokers[id] = broker;
  }
  const pool = new BackendPool(Object.entries(brokers).map(([id, b]) => ({ id, host: '127.0.0.1', port: b.port, weight: 1, state: 'ready', sendProxy: 'none', ...options.defs })));
  const stats = new Stats();
  const lines: LogLine[] = [];
  const log = createLogger('debug', {
    write: (line: string) => {
      const seenThen = Object.fromEntries(Object.entries(brokers).map(([id, b]) => [id, b.connections.length]));
      lines.push({ ...(JSON.parse(line) as Record<string, unknown>), failuresThen: stats.get('health_check_failures'), seenThen });
    },
  });
  const types = options.types ?? {};
  const checker = new HealthChecker(pool, { ...BASE, ...settings }, (id) => types[id] ?? settings.type ?? BASE.type, log, stats);
  cleanups.push(() => checker.stop());
  checker.start();
  const logged = (msg: string, backend?: string): LogLine[] => lines.filter((l) => l.msg === msg && (backend === undefined || l.backend === backend));
  return { pool, stats, checker, lines, brokers, logged };
}

const waitForLine = (r: Rig, msg: 'backend is DOWN' | 'backend is UP', backend: string, count = 1): Promise<LogLine> =>
  waitFor(() => r.logged(msg, backend)[count - 1], { what: () => `"${msg}" for ${backend} (log so far: ${r.lines.map((l) => l.msg).join(' | ')})` });

const waitForChecks = (broker: ScriptedBroker, n: number): Promise<unknown> => broker.waitForConnections(n);

describe('HealthChecker: going down', () => {
  it('marks a backend down on exactly the fall-th consecutive failure, once, with the reason', async () => {
    const r = await rig({ a: () => FAIL, b: () => PASS });
    const down = await waitForLine(r, 'backend is DOWN', 'a');
    expect(down.reason).toBe('CONNACK refused: 5 (not authorized) (3 checks failed in a row)');
    expect(down.level).toBe(40); // warn
    expect(down.closedConnections).toBe(0);
    expect(down.failuresThen).toBe(3); // not after 1 or 2 failures, and not later than the 3rd
    expect(r.pool.get('a')?.state).toBe('down');
    expect(r.pool.isHealthy('a')).toBe(false);
    expect(r.pool.available().map((b) => b.id)).toEqual(['b']);

    // Failures go on being checked and counted, but the change is logged and counted only once.
    await waitForChecks(r.brokers.a!, 8);
    await waitFor(() => r.stats.get('health_check_failures') >= 7, { what: 'more failed checks' });
    expect(r.logged('backend is DOWN', 'a')).toHaveLength(1);
    expect(r.stats.get('backends_marked_down')).toBe(1);
    // The passing backend was never marked anything.
    expect(r.logged('backend is DOWN', 'b')).toHaveLength(0);
    expect(r.logged('backend is UP')).toHaveLength(0);
    expect(r.pool.get('b')?.state).toBe('ready');
  });

  it('does not mark a backend down for failures that are not consecutive', async () => {
    // fail, fail, pass, fail, fail, pass, ...: never 3 failures in a row.
    const r = await rig({ a: (i) => (i % 3 === 2 ? PASS : FAIL) });
    await waitForChecks(r.brokers.a!, 15);
    expect(r.stats.get('health_check_failures')).toBeGreaterThanOrEqual(9);
    expect(r.logged('backend is DOWN')).toHaveLength(0);
    expect(r.stats.get('backends_marked_down')).toBe(0);
    expect(r.pool.get('a')?.state).toBe('ready');

    // Control: the same backend failing every check from now on goes down, after 3 in a row.
    const from = r.brokers.a!.connections.length;
    r.brokers.a!.setScript(() => FAIL);
    const down = await waitForLine(r, 'backend is DOWN', 'a');
    expect(down.reason).toMatch(/\(3 checks failed in a row\)$/);
    // The streak may have begun with the last old-script failures; it can not need more than 3 new ones.
    expect(down.seenThen.a).toBeLessThanOrEqual(from + 3 + 1);
  });

  it('counts a check that times out (server never answers) as a failure', async () => {
    const r = await rig({ a: () => 'silent' }, { timeoutMs: 50, fall: 2 });
    const down = await waitForLine(r, 'backend is DOWN', 'a');
    expect(down.reason).toBe('mqtt check timed out after 50 ms (2 checks failed in a row)');
    expect(r.pool.get('a')?.state).toBe('down');
  });

  it('tcp check: a port that stops listening is marked down (refused), and up again once it listens on the same port', async () => {
    const r = await rig({ a: () => PASS }, { type: 'tcp', fall: 2, rise: 2 });
    await waitForChecks(r.brokers.a!, 2);
    expect(r.pool.get('a')?.state).toBe('ready');
    r.brokers.a!.stopListening();
    const down = await waitForLine(r, 'backend is DOWN', 'a');
    expect(down.reason).toBe('connect failed: ECONNREFUSED (2 checks failed in a row)');
    expect(r.pool.get('a')?.state).toBe('down');
    await r.brokers.a!.listen();
    const up = await waitForLine(r, 'backend is UP', 'a');
    expect(up.reason).toBe('2 tcp checks passed');
    expect(up.level).toBe(30); // info
    expect(r.pool.get('a')?.state).toBe('ready');
    expect(r.stats.get('backends_marked_down')).toBe(1);
    expect(r.stats.get('backends_marked_up')).toBe(1);
  });
});

describe('HealthChecker: coming back up', () => {
  it('marks a down backend up on exactly the rise-th consecutive pass', async () => {
    const r = await rig({ a: () => FAIL }, { fall: 1, rise: 2 });
    await waitForLine(r, 'backend is DOWN', 'a');
    // From here: pass, fail, pass, pass. The failure resets the streak, so the rise comes on the
    // 4th new check, never on the 1st or 3rd.
    const switchedAt = r.brokers.a!.connections.length;
    const plan: Reply[] = [PASS, FAIL, PASS, PASS];
    r.brokers.a!.setScript((i) => plan[i - switchedAt] ?? PASS);
    const up = await waitForLine(r, 'backend is UP', 'a');
    expect(up.reason).toBe('2 mqtt checks passed');
    expect(up.seenThen.a).toBe(switchedAt + 4);
    expect(r.pool.get('a')?.state).toBe('ready');
    expect(r.pool.available().map((b) => b.id)).toEqual(['a']);
    expect(r.stats.get('backends_marked_up')).toBe(1);
    expect(r.logged('backend is UP')).toHaveLength(1);
  });

  it('backends start up: passing checks on a healthy backend log nothing', async () => {
    const r = await rig({ a: () => PASS });
    await waitForChecks(r.brokers.a!, 5);
    expect(r.logged('backend is UP')).toHaveLength(0);
    expect(r.stats.get('backends_marked_up')).toBe(0);
    // Every passing mqtt check said goodbye with a DISCONNECT.
    const first = r.brokers.a!.connections[0]!;
    await waitFor(() => first.closed, { what: 'the first check connection to close' });
    expect(first.packets.map((p) => p.cmd)).toEqual(['connect', 'disconnect']);
  });
});

describe('HealthChecker: admin state and health are independent', () => {
  it('a backend in maint keeps being checked; failing, it stays maint, and turned ready it is down until it passes', async () => {
    const r = await rig({ a: () => FAIL, b: () => PASS }, { fall: 2, rise: 1 });
    r.pool.setAdminState('a', 'maint');
    await waitForLine(r, 'backend is DOWN', 'a');
    expect(r.pool.isHealthy('a')).toBe(false);
    expect(r.pool.get('a')?.state).toBe('maint'); // the operator's maint wins over health
    expect(r.pool.setAdminState('a', 'ready')).toBe(true);
    expect(r.pool.get('a')?.state).toBe('down'); // health now decides
    expect(r.pool.available().map((b) => b.id)).toEqual(['b']);
    r.brokers.a!.setScript(() => PASS);
    await waitForLine(r, 'backend is UP', 'a');
    expect(r.pool.get('a')?.state).toBe('ready');
    expect(r.pool.available().map((b) => b.id)).toEqual(['a', 'b']);
  });

  it('a drained backend stays drain whatever its health, and is not offered even when healthy', async () => {
    const r = await rig({ a: () => PASS }, { fall: 1, rise: 1 });
    r.pool.setAdminState('a', 'drain');
    await waitForChecks(r.brokers.a!, 3);
    expect(r.pool.get('a')?.state).toBe('drain');
    expect(r.pool.available()).toEqual([]);
    r.brokers.a!.setScript(() => FAIL);
    await waitForLine(r, 'backend is DOWN', 'a');
    expect(r.pool.get('a')?.state).toBe('drain');
    r.brokers.a!.setScript(() => PASS);
    await waitForLine(r, 'backend is UP', 'a');
    expect(r.pool.get('a')?.state).toBe('drain');
    // Health never touched the admin state.
    expect(JSON.parse(JSON.stringify(r.pool.get('a')))).toMatchObject({ adminState: 'drain', healthy: true, state: 'drain' });
  });
});

describe('HealthChecker: onMarkedDown', () => {
  /** Real client sockets to the broker, registered with the pool as live connections of `id`. */
  async function liveConnections(r: Rig, id: string, n: number): Promise<Socket[]> {
    const sockets: Socket[] = [];
    for (let i = 0; i < n; i++) {
      const s = connect({ host: '127.0.0.1', port: r.brokers[id]!.port });
      s.on('error', () => undefined);
      cleanups.push(() => s.destroy());
      await new Promise<void>((resolve, reject) => {
        s.once('connect', resolve);
        s.once('error', reject);
      });
      const backend = r.pool.get(id)!;
      r.pool.connectionOpened(backend);
      const untrack = r.pool.track(backend, () => s.destroy());
      s.once('close', () => {
        untrack();
        r.pool.connectionClosed(backend);
      });
      sockets.push(s);
    }
    return sockets;
  }

  it('shutdown-sessions closes every live connection of the backend marked down, and only those', async () => {
    // Both brokers pass until the connections are in place; then `a` starts failing.
    const r = await rig({ a: () => PASS, b: () => PASS }, { fall: 2, onMarkedDown: 'shutdown-sessions' });
    const onA = await liveConnections(r, 'a', 3);
    const onB = await liveConnections(r, 'b', 2);
    r.brokers.a!.setScript(() => FAIL);
    const down = await waitForLine(r, 'backend is DOWN', 'a');
    expect(down.closedConnections).toBe(3);
    await waitFor(() => onA.every((s) => s.destroyed), { what: 'the connections of a to close' });
    expect(r.pool.get('a')?.activeConnections).toBe(0);
    expect(onB.some((s) => s.destroyed)).toBe(false);
    expect(r.pool.get('b')?.activeConnections).toBe(2);
  });

  it('keep leaves the live connections of a backend marked down open', async () => {
    const r = await rig({ a: () => PASS }, { fall: 2, onMarkedDown: 'keep' });
    const onA = await liveConnections(r, 'a', 3);
    r.brokers.a!.setScript(() => FAIL);
    const down = await waitForLine(r, 'backend is DOWN', 'a');
    expect(down.closedConnections).toBe(0);
    // Still open after further failed checks, not only at the moment of the decision.
    await waitFor(() => r.stats.get('health_check_failures') >= 4, { what: 'two more failed checks' });
    expect(onA.some((s) => s.destroyed)).toBe(false);
    expect(r.pool.get('a')?.activeConnections).toBe(3);
  });
});

describe('HealthChecker: which backends are checked', () => {
  it('checks each backend with its own type and never probes one whose type is none', async () => {
    const r = await rig({ off: () => PASS, viaMqtt: () => PASS, viaTcp: () => PASS }, {}, { types: { off: 'none', viaMqtt: 'mqtt', viaTcp: 'tcp' } });
    await waitForChecks(r.brokers.viaMqtt!, 4);
    const tcpFirst = await r.brokers.viaTcp!.waitForConnections(4);
    expect(r.brokers.off!.connections).toHaveLength(0);
    await waitFor(() => tcpFirst.closed, { what: 'a tcp check connection to close' });
    expect(tcpFirst.raw.length).toBe(0); // tcp: connect and close, no MQTT
    expect(r.brokers.viaMqtt!.connections[0]!.packets[0]).toMatchObject({ cmd: 'connect', clientId: 'tether-health-check' });
  });

  it('stop() ends the checks: no new probe afterwards', async () => {
    const r = await rig({ a: () => PASS });
    await waitForChecks(r.brokers.a!, 3);
    r.checker.stop();
    const seen = r.brokers.a!.connections.length;
    // Time passes for certain while a second checker makes 5 checks (4 intervals and more).
    const witness = await rig({ w: () => PASS });
    await waitForChecks(witness.brokers.w!, 5);
    // At most one probe could have been on its way (connecting) when stop() ran.
    expect(r.brokers.a!.connections.length).toBeLessThanOrEqual(seen + 1);
  });
});
