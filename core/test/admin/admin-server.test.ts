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

async function admin(names: readonly string[] = ['a', 'b'], select?: string[]): Promise<Admin> {
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
      ...(select ? { select } : {}),
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

/** A request that changes something, as the API wants it: a JSON body with its content type. */
async function send(a: Admin, method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${a.base}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  expect(res.headers.get('content-type')).toBe('application/json');
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const post = (a: Admin, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> => send(a, 'POST', path, body);
const setState = (a: Admin, name: string, state: unknown): ReturnType<typeof post> => post(a, `/backends/${encodeURIComponent(name)}/state`, { state });

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
      { id: 'a', host: '127.0.0.1', port: a.brokers.a!.port, weight: 1, configWeight: 1, sendProxy: 'none', maxconn: 0, state: 'ready', adminState: 'ready', healthy: true, activeConnections: 0, source: 'static' },
      { id: 'b', host: '127.0.0.1', port: a.brokers.b!.port, weight: 1, configWeight: 1, sendProxy: 'none', maxconn: 0, state: 'ready', adminState: 'ready', healthy: true, activeConnections: 0, source: 'static' },
    ]);
  });
});

describe('POST /backends/NAME/state', () => {
  it('sets the admin state: 200 with changed true, then false for the same state; GET /backends shows it', async () => {
    const a = await admin();
    const first = await setState(a, 'a', 'drain');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ changed: true, backend: { id: 'a', state: 'drain', adminState: 'drain' } });
    expect(a.server.pool.get('a')?.state).toBe('drain');
    const again = await setState(a, 'a', 'drain');
    expect(again.status).toBe(200);
    expect(again.body.changed).toBe(false);
    // Logged once, for the change only.
    expect(a.lines.filter((l) => l.msg === 'backend state set by admin')).toEqual([expect.objectContaining({ backend: 'a', state: 'drain' })]);

    expect((await setState(a, 'a', 'maint')).body).toMatchObject({ changed: true, backend: { state: 'maint' } });
    const listed = (await get(a, '/backends')).body.backends as { id: string; state: string }[];
    expect(listed.map((b) => [b.id, b.state])).toEqual([['a', 'maint'], ['b', 'ready']]);
    expect((await setState(a, 'a', 'ready')).body).toMatchObject({ changed: true, backend: { state: 'ready' } });
    expect(a.server.pool.available().map((b) => b.id)).toEqual(['a', 'b']);
  });

  it('400 for a state that is not ready, drain or maint (down belongs to the health check), and nothing changes', async () => {
    const a = await admin();
    for (const bad of ['down', '', 'READY', 'drain please', 1, null]) {
      const res = await setState(a, 'a', bad);
      expect(res.status, `state ${JSON.stringify(bad)}`).toBe(400);
      expect(res.body.error).toBe('state must be one of ready, drain, maint');
    }
    expect(a.server.pool.get('a')?.state).toBe('ready');
  });

  it('404 for an unknown backend, listing the known names', async () => {
    const a = await admin();
    const res = await setState(a, 'nope', 'drain');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: 'no backend named "nope"', backends: ['a', 'b'] });
  });

  it('finds backends whose names need URL encoding (space, slash)', async () => {
    const a = await admin(['rack 1', 'eu/2']);
    const spaced = await setState(a, 'rack 1', 'drain');
    expect(spaced.status).toBe(200);
    expect(spaced.body).toMatchObject({ changed: true, backend: { id: 'rack 1', state: 'drain' } });
    const slashed = await setState(a, 'eu/2', 'maint');
    expect(slashed.status).toBe(200);
    expect(slashed.body).toMatchObject({ changed: true, backend: { id: 'eu/2', state: 'maint' } });
  });

  it('takes effect on the next connection: a drained backend gets no new client', async () => {
    const a = await admin();
    await setState(a, 'a', 'drain');
    for (const id of ['d1', 'd2', 'd3']) await client(a, id);
    expect(a.brokers.a!.connections).toHaveLength(0);
    expect(a.brokers.b!.connections).toHaveLength(3);
  });
});

/** How many CONNECTs from `clientId` each broker has seen. */
function connectsOf(a: Admin, clientId: string): Record<string, number> {
  return Object.fromEntries(Object.entries(a.brokers).map(([name, broker]) => [name, broker.connections.filter((c) => c.packets.some((p) => p.cmd === 'connect' && p.clientId === clientId)).length]));
}

/** Connects `clientId` through the balancer and returns the broker its CONNECT reached. */
async function connectAndLand(a: Admin, clientId: string): Promise<{ socket: Socket; broker: string }> {
  const before = connectsOf(a, clientId);
  const socket = await client(a, clientId);
  const broker = await waitFor(() => Object.entries(connectsOf(a, clientId)).find(([name, n]) => n > before[name]!)?.[0], { what: `${clientId}'s CONNECT at a broker` });
  return { socket, broker };
}

describe('POST /backends/NAME/weight', () => {
  it('sets the weight live; the pool and GET /backends show it with the configured one; least-connections follows it', async () => {
    const a = await admin();
    const res = await post(a, '/backends/a/weight', { weight: 3 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ changed: true, backend: { id: 'a', weight: 3, configWeight: 1 } });
    expect((await post(a, '/backends/a/weight', { weight: 3 })).body.changed).toBe(false);
    expect(a.lines.filter((l) => l.msg === 'backend weight set by admin')).toEqual([expect.objectContaining({ backend: 'a', weight: 3 })]);
    const listed = (await get(a, '/backends')).body.backends as { id: string; weight: number; configWeight: number }[];
    expect(listed.map((b) => [b.id, b.weight, b.configWeight])).toEqual([['a', 3, 1], ['b', 1, 1]]);
    // Four new clients at 3:1: least-connections divides live connections by the weight.
    for (const id of ['w1', 'w2', 'w3', 'w4']) await client(a, id);
    expect([a.brokers.a!.connections.length, a.brokers.b!.connections.length]).toEqual([3, 1]);
  });

  it('400 for a weight that is not a whole number from 1 to 256; 404 for an unknown backend; nothing changes', async () => {
    const a = await admin();
    for (const bad of [0, 257, 1.5, -1, '5', null]) {
      const res = await post(a, '/backends/a/weight', { weight: bad });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.error).toBe('weight must be a whole number from 1 to 256');
    }
    const unknown = await post(a, '/backends/nope/weight', { weight: 2 });
    expect(unknown).toEqual({ status: 404, body: { error: 'no backend named "nope"', backends: ['a', 'b'] } });
    expect(a.server.pool.get('a')?.weight).toBe(1);
  });
});

describe('table edits: PUT and DELETE /table/entries/KEY, POST /table/clear', () => {
  it('PUT sends the key to the named backend from its next connection on', async () => {
    const a = await admin();
    const { socket, broker: home } = await connectAndLand(a, 'sensor-1');
    socket.destroy();
    const other = home === 'a' ? 'b' : 'a';
    const res = await send(a, 'PUT', '/table/entries/sensor-1', { backend: other });
    expect(res).toEqual({ status: 200, body: { key: 'sensor-1', backend: other, tables: 1 } });
    expect(a.lines.filter((l) => l.msg === 'table entry set by admin')).toEqual([expect.objectContaining({ table: { key: 'sensor-1' }, backend: other })]);
    expect((await connectAndLand(a, 'sensor-1')).broker).toBe(other);
    // A key never seen goes where it was set, too; keys with spaces and slashes travel URL-encoded.
    const key = 'site 4/meter';
    expect((await send(a, 'PUT', `/table/entries/${encodeURIComponent(key)}`, { backend: 'b' })).status).toBe(200);
    expect((await connectAndLand(a, key)).broker).toBe('b');
  });

  it('DELETE forgets the key (404 when no table has it); its next connection is placed afresh', async () => {
    const a = await admin();
    (await connectAndLand(a, 'gone-1')).socket.destroy();
    expect(await send(a, 'DELETE', '/table/entries/gone-1')).toEqual({ status: 200, body: { key: 'gone-1', deleted: true, tables: 1 } });
    const tables = (await get(a, '/table')).body.tables as { entries: unknown[] }[];
    expect(tables[0]!.entries).toEqual([]);
    expect(await send(a, 'DELETE', '/table/entries/gone-1')).toEqual({ status: 404, body: { error: 'no table has an entry for "gone-1"' } });
  });

  it('POST /table/clear forgets every entry, or with a backend only those on it', async () => {
    const a = await admin();
    await send(a, 'PUT', '/table/entries/k1', { backend: 'a' });
    await send(a, 'PUT', '/table/entries/k2', { backend: 'a' });
    await send(a, 'PUT', '/table/entries/k3', { backend: 'b' });
    expect(await post(a, '/table/clear', { backend: 'a' })).toEqual({ status: 200, body: { cleared: 2, tables: 1, backend: 'a' } });
    const left = (await get(a, '/table')).body.tables as { entries: { key: string }[] }[];
    expect(left[0]!.entries.map((e) => e.key)).toEqual(['k3']);
    expect(await post(a, '/table/clear', {})).toEqual({ status: 200, body: { cleared: 1, tables: 1 } });
    expect(await post(a, '/table/clear', { backend: 'zz' })).toEqual({ status: 404, body: { error: 'no backend named "zz"', backends: ['a', 'b'] } });
  });

  it('an unknown backend is a 404 naming the known ones; a missing one a 400; nothing is stored', async () => {
    const a = await admin();
    expect(await send(a, 'PUT', '/table/entries/k', { backend: 'c' })).toEqual({ status: 404, body: { error: 'no backend named "c"', backends: ['a', 'b'] } });
    expect((await send(a, 'PUT', '/table/entries/k', {})).status).toBe(400);
    expect((await send(a, 'PUT', '/table/entries/k', { backend: 'a', use: 3 })).body.error).toBe('unknown field "use" (allowed: backend)');
    const tables = (await get(a, '/table')).body.tables as { used: number }[];
    expect(tables[0]!.used).toBe(0);
  });

  it('409 when no strategy of the chain keeps a table', async () => {
    const a = await admin(['a', 'b'], ['least-connections']);
    const reason = { error: 'no strategy in the select chain keeps a table' };
    expect(await send(a, 'PUT', '/table/entries/k', { backend: 'a' })).toEqual({ status: 409, body: reason });
    expect(await send(a, 'DELETE', '/table/entries/k')).toEqual({ status: 409, body: reason });
    expect(await post(a, '/table/clear', {})).toEqual({ status: 409, body: reason });
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
    const sticky = await post(a, '/explain', { hex });
    expect(sticky.status).toBe(200);
    expect(sticky.body).toMatchObject({ valid: true, clientId: 'sensor-9', key: 'sensor-9', keySource: 'client-id', persistentSession: true, backend: home, strategy: 'stick-table' });
    // With the sticky backend in maintenance, the entry is passed over and the fallback answers.
    await setState(a, home, 'maint');
    const moved = await post(a, '/explain', { hex });
    expect(moved.body).toMatchObject({ valid: true, backend: other, strategy: 'least-connections' });
    // explain is a dry run: it moved no table entry and counted no connection.
    const table = (await get(a, '/table')).body.tables as { entries: { key: string; backend: string }[] }[];
    expect(table[0]!.entries).toEqual([expect.objectContaining({ key: 'sensor-9', backend: home })]);
    expect(a.server.stats.get('connections_accepted')).toBe(1);
  });

  it('400 for a body that is not hex; an incomplete packet is explained as invalid', async () => {
    const a = await admin();
    for (const body of [{ hex: 'not hex!' }, { hex: 'abc' }, {}, { hex: 12 }]) {
      const bad = await post(a, '/explain', body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.body.error).toBe('body must be {"hex": "…"}: the packet as an even-length hexadecimal string');
    }
    const partial = connectPacket('x').subarray(0, 6).toString('hex');
    const res = await post(a, '/explain', { hex: partial });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ valid: false, bytes: 6 });
    expect(res.body.error).toMatch(/incomplete packet/);
  });
});

describe('other routes', () => {
  it('404 with the list of routes for an unknown path', async () => {
    const a = await admin();
    for (const path of ['/nope', '/backends/a', '/table/entries', '/table/entries/k/x']) {
      const res = await fetch(`${a.base}${path}`);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { routes: string[] }).routes).toEqual([
        'GET /table', 'GET /stats', 'GET /backends', 'POST /backends/NAME/state', 'POST /backends/NAME/weight',
        'PUT /table/entries/KEY', 'DELETE /table/entries/KEY', 'POST /table/clear', 'GET /metrics', 'GET /status', 'POST /reload', 'POST /explain',
        'GET /', 'GET /dashboard.js', 'GET /dashboard.css', 'GET /favicon.svg',
      ]);
    }
  });

  it('405 with Allow for a known path and another method', async () => {
    const a = await admin();
    for (const [method, path, allow] of [['GET', '/backends/a/state', 'POST'], ['POST', '/table', 'GET'], ['DELETE', '/backends', 'GET'], ['POST', '/table/entries/k', 'PUT, DELETE']] as const) {
      const res = await fetch(`${a.base}${path}`, { method, headers: { 'content-type': 'application/json' } });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      expect(((await res.json()) as { error: string }).error).toBe(`${method} is not allowed on ${path}; use ${allow}`);
    }
  });

  it('400 for a body that is not a JSON object, or with a field the route does not take; nothing changes', async () => {
    const a = await admin();
    const raw = async (body: string): Promise<{ status: number; error: string }> => {
      const res = await fetch(`${a.base}/backends/a/state`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return { status: res.status, error: ((await res.json()) as { error: string }).error };
    };
    expect(await raw('drain')).toEqual({ status: 400, error: expect.stringMatching(/^body is not valid JSON: /) as unknown as string });
    expect(await raw('["drain"]')).toEqual({ status: 400, error: 'body must be a JSON object' });
    expect(await raw('{"state":"drain","force":true}')).toEqual({ status: 400, error: 'unknown field "force" (allowed: state)' });
    expect(a.server.pool.get('a')?.state).toBe('ready');
  });
});

describe('the dashboard (GET /)', () => {
  it('serves the page and its files from this package, each with a policy that allows only this origin and no framing', async () => {
    const a = await admin();
    const page = await fetch(`${a.base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    // Nothing from another origin: every script, style and image is one of the admin API's own paths.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).toContain('<script src="/dashboard.js" defer></script>');
    for (const [path, type] of [['/', 'text/html'], ['/dashboard.js', 'text/javascript'], ['/dashboard.css', 'text/css'], ['/favicon.svg', 'image/svg+xml']] as const) {
      const res = await fetch(`${a.base}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')?.startsWith(type), path).toBe(true);
      expect(res.headers.get('content-security-policy'), path).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      expect(res.headers.get('cache-control'), path).toBe('no-store');
      expect((await res.text()).length, path).toBeGreaterThan(100);
    }
    // Only GET: the page is read, never changed.
    expect((await fetch(`${a.base}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(405);
  });
});
