import { connect, type Socket } from 'node:net';
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet';
import { builtinRegistry } from '@tether/cli';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.ts';
import { createTether } from '../../src/di/container.ts';
import { createLogger } from '../../src/logger.ts';
import { formatHostPort } from '../../src/net/address.ts';
import type { TetherServer } from '../../src/tether-server.ts';
// A real MQTT server on loopback that answers CONNACK 0: enough of a broker for a spliced connection.
import { ScriptedBroker } from '../../../test/harness/ha-scripted-broker.ts';
import { waitFor } from '../../../test/harness/poll.ts';

/**
 * The admin HTTP API of a real balancer (built by createTether as `tether start` builds it, admin
 * on 127.0.0.1:0), spoken to with fetch. Backends are scripted MQTT servers, so a client can be
 * spliced through and the stick table, stats and explain have something real to show.
 */

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Admin {
  readonly server: TetherServer;
  readonly base: string;
  readonly lines: Record<string, unknown>[];
  readonly brokers: Record<string, ScriptedBroker>;
}

async function admin(names: readonly string[] = ['a', 'b']): Promise<Admin> {
  const brokers: Record<string, ScriptedBroker> = {};
  for (const name of names) {
    const broker = await ScriptedBroker.start();
    cleanups.push(() => broker.close());
    brokers[name] = broker;
  }
  const config = loadConfig({
    env: {},
    overrides: {
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      backends: Object.entries(brokers).map(([name, b]) => ({ name, address: `127.0.0.1:${b.port}` })),
    },
  });
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const { server } = await createTether({ config, registry: builtinRegistry(), log });
  await server.start();
  cleanups.push(() => server.close());
  return { server, base: `http://${formatHostPort(server.adminAddress!)}`, lines, brokers };
}

async function get(a: Admin, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${a.base}${path}`);
  expect(res.headers.get('content-type')).toBe('application/json');
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function post(a: Admin, path: string, body: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${a.base}${path}`, { method: 'POST', body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const connectPacket = (clientId: string, extra: Partial<IConnectPacket> = {}): Buffer =>
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId, ...extra });

/** An MQTT client through the balancer on a bare socket: resolves once its CONNACK is back. */
async function client(a: Admin, clientId: string): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port: a.server.address.port });
  socket.on('error', () => undefined);
  cleanups.push(() => socket.destroy());
  const packets: Packet[] = [];
  const parser = mqttPacket.parser();
  parser.on('packet', (p: Packet) => packets.push(p));
  socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  socket.write(connectPacket(clientId));
  await waitFor(() => packets.find((p) => p.cmd === 'connack'), { what: `CONNACK for ${clientId}` });
  return socket;
}

describe('GET /backends', () => {
  it('lists every backend with its effective and admin state, health and live connections', async () => {
    const a = await admin();
    const { status, body } = await get(a, '/backends');
    expect(status).toBe(200);
    expect(body.backends).toEqual([
      { id: 'a', host: '127.0.0.1', port: a.brokers.a!.port, weight: 1, sendProxy: 'none', maxconn: 0, state: 'ready', adminState: 'ready', healthy: true, activeConnections: 0 },
      { id: 'b', host: '127.0.0.1', port: a.brokers.b!.port, weight: 1, sendProxy: 'none', maxconn: 0, state: 'ready', adminState: 'ready', healthy: true, activeConnections: 0 },
    ]);
  });
});

describe('POST /backends/NAME/state', () => {
  it('sets the admin state: 200 with changed true, then false for the same state; GET /backends shows it', async () => {
    const a = await admin();
    const first = await post(a, '/backends/a/state', 'drain');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ changed: true, backend: { id: 'a', state: 'drain', adminState: 'drain' } });
    expect(a.server.pool.get('a')?.state).toBe('drain');
    const again = await post(a, '/backends/a/state', 'drain\n'); // a trailing newline (curl -d @file) is fine
    expect(again.status).toBe(200);
    expect(again.body.changed).toBe(false);
    // Logged once, for the change only.
    expect(a.lines.filter((l) => l.msg === 'backend state set by admin')).toEqual([expect.objectContaining({ backend: 'a', state: 'drain' })]);

    expect((await post(a, '/backends/a/state', 'maint')).body).toMatchObject({ changed: true, backend: { state: 'maint' } });
    const listed = (await get(a, '/backends')).body.backends as { id: string; state: string }[];
    expect(listed.map((b) => [b.id, b.state])).toEqual([['a', 'maint'], ['b', 'ready']]);
    expect((await post(a, '/backends/a/state', 'ready')).body).toMatchObject({ changed: true, backend: { state: 'ready' } });
    expect(a.server.pool.available().map((b) => b.id)).toEqual(['a', 'b']);
  });

  it('400 for a state that is not ready, drain or maint (down belongs to the health check), and nothing changes', async () => {
    const a = await admin();
    for (const bad of ['down', '', 'READY', 'drain please']) {
      const res = await post(a, '/backends/a/state', bad);
      expect(res.status, `state "${bad}"`).toBe(400);
      expect(res.body.error).toBe('state must be one of ready, drain, maint');
    }
    expect(a.server.pool.get('a')?.state).toBe('ready');
  });

  it('404 for an unknown backend, listing the known names', async () => {
    const a = await admin();
    const res = await post(a, '/backends/nope/state', 'drain');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: 'no backend named "nope"', backends: ['a', 'b'] });
  });

  it('finds backends whose names need URL encoding (space, slash)', async () => {
    const a = await admin(['rack 1', 'eu/2']);
    const spaced = await post(a, `/backends/${encodeURIComponent('rack 1')}/state`, 'drain');
    expect(spaced.status).toBe(200);
    expect(spaced.body).toMatchObject({ changed: true, backend: { id: 'rack 1', state: 'drain' } });
    const slashed = await post(a, `/backends/${encodeURIComponent('eu/2')}/state`, 'maint');
    expect(slashed.status).toBe(200);
    expect(slashed.body).toMatchObject({ changed: true, backend: { id: 'eu/2', state: 'maint' } });
  });

  it('takes effect on the next connection: a drained backend gets no new client', async () => {
    const a = await admin();
    await post(a, '/backends/a/state', 'drain');
    for (const id of ['d1', 'd2', 'd3']) await client(a, id);
    expect(a.brokers.a!.connections).toHaveLength(0);
    expect(a.brokers.b!.connections).toHaveLength(3);
  });
});

describe('GET /table and GET /stats', () => {
  it('shows the stick entry of a spliced client and the counters of its connection', async () => {
    const a = await admin();
    await client(a, 'sensor-1');
    const home = a.brokers.a!.connections.length === 1 ? 'a' : 'b';
    // The entry is stored when the splice is made, before the broker's CONNACK can come back.
    const { status, body } = await get(a, '/table');
    expect(status).toBe(200);
    const tables = body.tables as { name: string; used: number; entries: { key: string; backend: string; use: number }[] }[];
    expect(tables.map((t) => t.name)).toEqual(['stick-table']);
    expect(tables[0]!.used).toBe(1);
    expect(tables[0]!.entries).toEqual([expect.objectContaining({ key: 'sensor-1', backend: home, use: 1 })]);
    // ?limit bounds the entries listed, not the count of used ones.
    const limited = (await get(a, '/table?limit=0')).body.tables as { used: number; entries: unknown[] }[];
    expect(limited[0]).toMatchObject({ used: 1, entries: [] });

    const stats = await get(a, '/stats');
    expect(stats.status).toBe(200);
    expect(stats.body.counters).toMatchObject({ connections_accepted: 1, connections_spliced: 1, connections_active: 1, stick_table_misses: 1 });
  });
});

describe('POST /explain', () => {
  it('explains a hex CONNECT with the backend the chain would pick now, following the admin state', async () => {
    const a = await admin();
    await client(a, 'sensor-9');
    const home = a.brokers.a!.connections.length === 1 ? 'a' : 'b';
    const other = home === 'a' ? 'b' : 'a';
    const hex = connectPacket('sensor-9', { clean: false }).toString('hex');
    const sticky = await post(a, '/explain', hex);
    expect(sticky.status).toBe(200);
    expect(sticky.body).toMatchObject({ valid: true, clientId: 'sensor-9', key: 'sensor-9', keySource: 'client-id', persistentSession: true, backend: home, strategy: 'stick-table' });
    // With the sticky backend in maintenance, the entry is passed over and the fallback answers.
    await post(a, `/backends/${home}/state`, 'maint');
    const moved = await post(a, '/explain', hex);
    expect(moved.body).toMatchObject({ valid: true, backend: other, strategy: 'least-connections' });
    // explain is a dry run: it moved no table entry and counted no connection.
    const table = (await get(a, '/table')).body.tables as { entries: { key: string; backend: string }[] }[];
    expect(table[0]!.entries).toEqual([expect.objectContaining({ key: 'sensor-9', backend: home })]);
    expect(a.server.stats.get('connections_accepted')).toBe(1);
  });

  it('400 for a body that is not hex; an incomplete packet is explained as invalid', async () => {
    const a = await admin();
    const bad = await post(a, '/explain', 'not hex!');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('body must be the packet as hex');
    const partial = connectPacket('x').subarray(0, 6).toString('hex');
    const res = await post(a, '/explain', partial);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ valid: false, bytes: 6 });
    expect(res.body.error).toMatch(/incomplete packet/);
  });
});

describe('other routes', () => {
  it('404 with the list of routes for an unknown path or method', async () => {
    const a = await admin();
    for (const [method, path] of [['GET', '/nope'], ['GET', '/backends/a/state'], ['POST', '/table'], ['DELETE', '/backends']] as const) {
      const res = await fetch(`${a.base}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(((await res.json()) as { routes: string[] }).routes).toContain('POST /backends/NAME/state');
    }
  });
});
