import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedBrokers } from '@tether/embedded-broker';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { startBalancer } from '../harness/balancer.ts';
import { RawClient } from '../harness/raw-mqtt-client.ts';
import { ClientPool } from '../harness/traffic-mqtt-clients.ts';
import { Teardown } from '../harness/traffic-teardown.ts';
import { parseReply, upgradeRequest } from '../harness/websocket-bytes.ts';

/** A reload that changes a WebSocket listener's options applies them to the connections accepted after it. */

const teardown = new Teardown();
const pool = new ClientPool();
afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

describe('WebSocket listener options on reload', { timeout: 60_000 }, () => {
  it('a new path applies at once to new connections, is reported, and live WebSocket clients stay connected', async () => {
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(1), (bs) => Promise.all(bs.map((b) => b.close())));
    const dir = teardown.add('dir', mkdtempSync(join(tmpdir(), 'tether-ws-reload-')), (d) => rmSync(d, { recursive: true, force: true }));
    const file = join(dir, 'tether.yaml');
    const config = (path: string): string => YAML.stringify({ backends: [`b1=127.0.0.1:${brokers[0]!.port}`], listeners: [{ name: 'ws', address: '127.0.0.1:0', websocket: { path } }] });
    writeFileSync(file, config('/mqtt'));
    const balancer = teardown.add('balancer', await startBalancer({}, file), (b) => b.close());
    const port = balancer.server.addresses.get('ws')!.port;
    const live = await pool.connect(`ws://127.0.0.1:${port}/mqtt`, { clientId: 'before-reload', clean: true });

    writeFileSync(file, config('/ws'));
    const result = await balancer.server.reload('test');
    expect(result.changes).toContain('listener ws websocket: {"maxHeaderBytes":8192,"maxMessageBytes":1048576,"path":"/mqtt","protocols":["mqtt","mqttv3.1"]} → {"maxHeaderBytes":8192,"maxMessageBytes":1048576,"path":"/ws","protocols":["mqtt","mqttv3.1"]}');
    // Same address: the listener stays bound (the port does not move).
    expect(balancer.server.addresses.get('ws')!.port).toBe(port);

    const after = await pool.connect(`ws://127.0.0.1:${port}/ws`, { clientId: 'after-reload', clean: true });
    expect(after.connack.returnCode).toBe(0);
    const old = await RawClient.connect(port, { parse: false });
    await old.write(upgradeRequest({ protocol: 'mqtt', path: '/mqtt' }));
    await old.waitClosed();
    expect(parseReply(old.received()).status).toBe(404);
    // The client connected before the reload is still served.
    await live.client.subscribeAsync('still/here', { qos: 1 });
    expect(live.client.connected).toBe(true);
  });
});
