import { fileURLToPath } from 'node:url';
import { createLogger, createTether, loadConfig, type TetherServer } from '@tether/core';
import { builtinRegistry } from '@tether/cli';
import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterEach, expect, it } from 'vitest';

const EXAMPLE = fileURLToPath(new URL('../example.yaml', import.meta.url));
const NAMES = ['acme-1', 'acme-2', 'globex-1'];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A balancer built the way `tether start` builds one, on a free loopback port. */
async function startBalancer(file: string, overrides: Record<string, unknown>): Promise<TetherServer> {
  const config = loadConfig({ env: {}, file, overrides: { listen: '127.0.0.1:0', 'log.level': 'silent', ...overrides } });
  const { server } = await createTether({ config, registry: builtinRegistry(), log: createLogger(config.log.level) });
  await server.start();
  closers.push(() => server.close());
  return server;
}

/** Resolves with the id of the broker that sees `clientId` connect. */
function landing(brokers: EmbeddedBroker[], clientId: string): Promise<string> {
  return new Promise((resolve) => {
    for (const b of brokers) b.aedes.on('client', (c) => c.id === clientId && resolve(b.id));
  });
}

it('sends tenant globex to globex-1', async () => {
  const brokers = await startEmbeddedBrokers(3, { cluster: false });
  closers.push(() => Promise.all(brokers.map((b) => b.close())));
  // example.yaml's backend names, with the real brokers' ports.
  const server = await startBalancer(EXAMPLE, { backends: brokers.map((b, i) => `${NAMES[i]}=127.0.0.1:${b.port}`) });

  const landed = landing(brokers, 'sensor-1');
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.address.port}`, { clientId: 'sensor-1', username: 'globex:sensor-1', reconnectPeriod: 0 });
  closers.push(() => client.endAsync());
  expect(await landed).toBe(brokers[2]!.id);
  expect(server.stats.get('example_tenant_affinity_selected')).toBe(1);
});

it('doc extractor + sink, loaded by use: path', async () => {
  const brokers = await startEmbeddedBrokers(3, { cluster: false });
  closers.push(() => Promise.all(brokers.map((b) => b.close())));
  const server = await startBalancer(EXAMPLE, {
    backends: brokers.map((b, i) => `${NAMES[i]}=127.0.0.1:${b.port}`),
    key: [{ use: './scratch/user-property.ts', options: { property: 'serial' } }, 'client-id'],
    sinks: ['proxy-protocol', { use: './scratch/route-log.ts', options: { level: 'debug' } }],
  });
  const landed = landing(brokers, 'c5');
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.address.port}`, { clientId: 'c5', username: 'acme:x', reconnectPeriod: 0 });
  closers.push(() => client.endAsync());
  await landed;
  expect(server.stats.get('acme_route_log_tenanted')).toBe(1);
  const c3 = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.address.port}`, { clientId: 'c3', username: 'zzz:x', reconnectPeriod: 0 });
  closers.push(() => c3.endAsync());
  expect(server.stats.get('acme_route_log_other')).toBe(1);
  const bytes = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: 'c9', properties: { userProperties: { serial: ['SN-1', 'SN-2'] } } });
  const r = await server.explain(bytes);
  expect(r).toMatchObject({ key: 'SN-1', keySource: 'acme:user-property' });
  const r2 = await server.explain(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'c9' }));
  expect(r2).toMatchObject({ key: 'c9', keySource: 'client-id' });
  const table = server.strategies.tables()[0]!;
  expect(table.entries.map((e) => e.key).sort()).toEqual(['c3', 'c5']);
});
