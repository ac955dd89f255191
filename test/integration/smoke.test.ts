import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import { EventEmitter, once } from 'node:events';
import mqtt, { type IConnackPacket } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBalancer, tableEntries, type TestBalancer } from '../harness/balancer.ts';

describe('smoke: a persistent client through Tether to independent aedes brokers', () => {
  let brokers: EmbeddedBroker[];
  let balancer: TestBalancer;

  beforeAll(async () => {
    brokers = await startEmbeddedBrokers(2, { cluster: false });
    balancer = await startBalancer({ backends: brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`) });
  });
  afterAll(async () => {
    await balancer?.close();
    await Promise.all(brokers.map((b) => b.close()));
  });

  it('reconnects to the same broker and finds its session', async () => {
    const first = await mqtt.connectAsync(balancer.url, { clientId: 'smoke-1', clean: false, reconnectPeriod: 0 });
    await first.subscribeAsync('smoke/#', { qos: 1 });
    await first.endAsync();
    const again = mqtt.connect(balancer.url, { clientId: 'smoke-1', clean: false, reconnectPeriod: 0 });
    const [connack] = (await once(again as unknown as EventEmitter, 'connect')) as [IConnackPacket];
    expect(connack.sessionPresent).toBe(true);
    expect((await tableEntries(balancer)).map((e) => e.key)).toContain('smoke-1');
    await again.endAsync();
  });
});
