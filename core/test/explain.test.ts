import mqttPacket, { type IConnectPacket } from 'mqtt-packet';
import { builtinRegistry } from '@tether/cli';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.ts';
import { createTether } from '../src/di/container.ts';
import { createLogger } from '../src/logger.ts';
import { PLUGIN_API_VERSION, type TetherPlugin } from '../src/plugin.ts';
import type { TetherServer } from '../src/tether-server.ts';
import { connInfo } from './fixtures.ts';

// explain() runs the real pipeline stages (sniff, identify, select) with the built-in plugins,
// wired by createTether exactly as `tether explain` does, but never connects anywhere.

const servers: TetherServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function tether(overrides: Record<string, unknown> = {}, extra: { plugins?: TetherPlugin[]; now?: () => number } = {}): Promise<TetherServer> {
  const config = loadConfig({ env: {}, overrides: { listen: '127.0.0.1:0', backends: ['a=127.0.0.1:1', 'b=127.0.0.1:2'], ...overrides } });
  const registry = builtinRegistry();
  for (const plugin of extra.plugins ?? []) registry.register(plugin, 'test');
  const { server } = await createTether({ config, registry, log: createLogger('silent'), ...(extra.now ? { now: extra.now } : {}) });
  servers.push(server);
  return server;
}

function bytes(fields: Partial<IConnectPacket>, protocolVersion: 4 | 5 = 4): Buffer {
  return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion, clean: true, keepalive: 30, clientId: '', ...fields } as IConnectPacket, { protocolVersion });
}

describe('explain', () => {
  it('describes a 3.1.1 CONNECT and the backend the chain would choose', async () => {
    const server = await tether();
    const packet = bytes({ clientId: 'sensor-1', username: 'alice', clean: false, keepalive: 45 });
    const result = await server.explain(packet);
    expect(result).toMatchObject({
      valid: true, bytes: packet.length, protocolName: 'MQTT', protocolVersion: 4, clientId: 'sensor-1', username: 'alice',
      cleanSession: false, keepalive: 45, persistentSession: true, key: 'sensor-1', keySource: 'client-id', strategy: 'least-connections',
    });
    expect(['a', 'b']).toContain(result.backend);
    expect(result.error).toBeUndefined();
  });

  it('reports the MQTT 5 session expiry and derives persistence from it', async () => {
    const server = await tether();
    const result = await server.explain(bytes({ clientId: 'v5', clean: true, properties: { sessionExpiryInterval: 3600 } }, 5));
    expect(result).toMatchObject({ valid: true, protocolVersion: 5, cleanSession: true, sessionExpiryInterval: 3600, persistentSession: true });
  });

  it('shows a client with an empty client id as keyless, answered by the fallback strategy', async () => {
    const server = await tether();
    const result = await server.explain(bytes({ clientId: '' }));
    expect(result).toMatchObject({ valid: true, key: null, keySource: null, strategy: 'least-connections' });
  });

  it('follows the configured key chain (username first)', async () => {
    const server = await tether({ key: ['username', 'client-id'] });
    expect(await server.explain(bytes({ clientId: 'dev', username: 'bob' }))).toMatchObject({ key: 'bob', keySource: 'username' });
    expect(await server.explain(bytes({ clientId: 'dev' }))).toMatchObject({ key: 'dev', keySource: 'client-id' });
  });

  it('answers from the stick table once the key has been learned, and re-dispatches when its backend leaves', async () => {
    const server = await tether();
    const b = server.pool.get('b')!;
    server.strategies.spliced(connInfo({ clientId: 'sticky' }, 'sticky'), b);
    expect(await server.explain(bytes({ clientId: 'sticky' }))).toMatchObject({ key: 'sticky', backend: 'b', strategy: 'stick-table' });
    server.pool.setAdminState('b', 'drain');
    expect(await server.explain(bytes({ clientId: 'sticky' }))).toMatchObject({ backend: 'a', strategy: 'least-connections' });
  });

  it('uses the injected clock, so a released entry expires without waiting', async () => {
    let now = 1_000_000;
    const server = await tether({ select: [{ use: 'stick-table', options: { expire: '1m' } }, 'least-connections'] }, { now: () => now });
    const conn = connInfo({ clientId: 'k' }, 'k');
    const b = server.pool.get('b')!;
    server.strategies.spliced(conn, b);
    server.strategies.closed(conn, b);
    now += 59_999;
    expect(await server.explain(bytes({ clientId: 'k' }))).toMatchObject({ backend: 'b', strategy: 'stick-table' });
    now += 60_000; // the match above refreshed the entry, so a full minute more is needed
    expect(await server.explain(bytes({ clientId: 'k' }))).toMatchObject({ strategy: 'least-connections' });
  });

  it('shows no backend when none is ready', async () => {
    const server = await tether({ backends: [{ name: 'a', address: '127.0.0.1:1', state: 'maint' }] });
    expect(await server.explain(bytes({ clientId: 'x' }))).toMatchObject({ valid: true, key: 'x', backend: null, strategy: null });
  });

  it('reports a strategy failure as an error next to the parsed fields', async () => {
    const broken: TetherPlugin = {
      name: 'acme:broken', kind: 'strategy', apiVersion: PLUGIN_API_VERSION,
      create: () => ({ select: () => { throw new Error('redis down'); } }),
    };
    const server = await tether({ select: ['acme:broken', 'least-connections'] }, { plugins: [broken] });
    const result = await server.explain(bytes({ clientId: 'x' }));
    expect(result).toMatchObject({ valid: true, clientId: 'x', key: 'x', error: 'plugin "acme:broken" failed in select: redis down' });
    expect(result.backend).toBeUndefined();
  });

  it.each([
    ['an incomplete CONNECT', () => bytes({ clientId: 'x' }).subarray(0, 5), /incomplete packet: 5 bytes/],
    ['no bytes', () => Buffer.alloc(0), /incomplete packet: 0 bytes/],
    ['an HTTP request', () => Buffer.from('GET / HTTP/1.1\r\n\r\n'), /HTTP/],
    ['a CONNECT above sniff.maxBytes', () => bytes({ clientId: 'x'.repeat(200) }), /exceeds sniff\.maxBytes \(100\)/],
  ])('calls %s invalid and says why', async (_name, make, message) => {
    const server = await tether({ 'sniff.maxBytes': 100 });
    const input = make();
    const result = await server.explain(input);
    expect(result.valid).toBe(false);
    expect(result.bytes).toBe(input.length);
    expect(result.error).toMatch(message);
    expect(result.backend).toBeUndefined();
  });
});
