import { afterEach, describe, expect, it } from 'vitest';
import { startBalancer, stuckTo, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { startMosquitto } from '../harness/mosquitto.ts';
import { MosquittoLog } from '../harness/traffic-mosquitto-log.ts';
import { ProcessGroup, type Running } from '../harness/traffic-processes.ts';
import { Teardown } from '../harness/traffic-teardown.ts';
import { waitUntil } from '../harness/traffic-wait.ts';

/**
 * Debian's mosquitto as both brokers and Debian's mosquitto_sub / mosquitto_pub as the clients:
 * the seed's demo, run through Tether. The two mosquittos are independent (no bridge), so a
 * message reaches a subscriber only when it is published on the broker that holds the
 * subscriber. The tests get there in the two ways a deployment would: publishing on the broker
 * Tether's stick table names, or giving publisher and subscriber the same stickiness key.
 */

const missing = ['mosquitto', 'mosquitto_sub', 'mosquitto_pub'].map(skipReason).join('');

const teardown = new Teardown();
const tools = new ProcessGroup();

afterEach(async () => {
  await tools.killAll();
  await teardown.run();
}, 30_000);

interface Setup {
  readonly balancer: TestBalancer;
  readonly logs: Map<string, MosquittoLog>;
  readonly ports: Map<string, number>;
}

async function setup(overrides: Record<string, unknown> = {}): Promise<Setup> {
  const ports = new Map<string, number>();
  const logs = new Map<string, MosquittoLog>();
  for (const name of ['mosq1', 'mosq2']) {
    const m = teardown.add(name, await startMosquitto(), (x) => x.stop());
    logs.set(name, new MosquittoLog(name, m));
    ports.set(name, m.port);
  }
  const backends = [...ports].map(([name, port]) => `${name}=127.0.0.1:${port}`);
  const balancer = teardown.add('balancer', await startBalancer({ backends, ...overrides }), (b) => b.close());
  return { balancer, logs, ports };
}

/**
 * The backend Tether's stick table holds for `key`: where that client's session lives. The entry
 * is stored once the connection is spliced, which a spawned tool does in its own time: bounded poll.
 */
function stickOwner(balancer: TestBalancer, key: string): Promise<string> {
  return waitUntil(`a stick table entry for ${key}`, () => stuckTo(balancer, key), { tries: 400 });
}

/**
 * Resolves once `sub`'s subscription to `<root>/#` is in place on the broker at `port`.
 * mosquitto_sub's debug lines ("received SUBACK") sit in its stdio buffer when stdout is a pipe,
 * but every message it prints is flushed; so we publish a retained marker on that broker and wait
 * for it. Retained, it arrives whether the SUBSCRIBE is processed before or after the publish.
 */
async function subscribed(sub: Running, port: number, root: string): Promise<void> {
  const marker = await tools.run('mosquitto_pub', [...direct(port), '-t', `${root}/ready`, '-m', 'ready', '-r', '-q', '1']);
  expect(marker.code).toBe(0);
  await sub.waitForLine(new RegExp(`^${root}/ready ready$`));
}

const through = (b: TestBalancer): string[] => ['-h', '127.0.0.1', '-p', String(b.port)];
const direct = (port: number): string[] => ['-h', '127.0.0.1', '-p', String(port)];

describe.skipIf(missing !== '')(`mosquitto brokers and mosquitto_sub/mosquitto_pub through Tether${missing}`, { timeout: 90_000 }, () => {
  it('the seed demo: mosquitto_sub through Tether gets what mosquitto_pub publishes on the broker the stick table names', async () => {
    const { balancer, logs, ports } = await setup();
    const sub = tools.spawn('mosquitto_sub', [...through(balancer), '-t', 't/#', '-i', 'subscriber1', '-c', '-q', '1', '-v'], 30_000);
    const home = await stickOwner(balancer, 'subscriber1');
    const other = [...ports.keys()].find((n) => n !== home)!;
    await subscribed(sub, ports.get(home)!, 't');
    expect(logs.get(home)!.connectionsOf('subscriber1')).toHaveLength(1);

    // First on the other broker: it has no subscriber1, and the brokers share nothing, so this one
    // can never arrive. It is published first so that, once the second has arrived, its absence is
    // settled rather than merely not yet seen.
    const elsewhere = await tools.run('mosquitto_pub', [...direct(ports.get(other)!), '-t', 't/elsewhere', '-m', 'lost on the other broker', '-q', '1', '-i', 'publisher-other']);
    expect(elsewhere.code).toBe(0);
    const pub = await tools.run('mosquitto_pub', [...direct(ports.get(home)!), '-t', 't/demo', '-m', 'hello from mosquitto_pub', '-q', '1', '-i', 'publisher1']);
    expect(pub.code).toBe(0);

    await sub.waitForLine(/^t\/demo /);
    expect(sub.stdout().trim().split('\n')).toEqual(['t/ready ready', 't/demo hello from mosquitto_pub']);
    expect(logs.get(other)!.connectionsOf('subscriber1')).toEqual([]);
  });

  it('with the user name as the key, mosquitto_sub and mosquitto_pub both go through Tether and meet on one broker', async () => {
    // key: username first, client id for clients without one. All of alice's clients share the
    // stick entry "alice", so the publisher follows the subscriber whatever its client id.
    const { balancer, logs, ports } = await setup({ key: ['username', 'client-id'] });
    const sub = tools.spawn('mosquitto_sub', [...through(balancer), '-u', 'alice', '-i', 'alice-sub', '-t', 'home/#', '-c', '-q', '1', '-v'], 30_000);
    const home = await stickOwner(balancer, 'alice');
    await subscribed(sub, ports.get(home)!, 'home');

    const pub = await tools.run('mosquitto_pub', [...through(balancer), '-u', 'alice', '-i', 'alice-pub', '-t', 'home/door', '-m', 'open', '-q', '1']);
    expect(pub.code).toBe(0);
    await sub.waitForLine(/^home\/door /);
    expect(sub.stdout().trim().split('\n')).toEqual(['home/ready ready', 'home/door open']);
    // Both clients were on the same broker according to the broker itself.
    expect(logs.get(home)!.connectionsOf('alice-sub')).toHaveLength(1);
    expect(logs.get(home)!.connectionsOf('alice-pub')).toHaveLength(1);
  });

  it('mosquitto_sub -c -i: a second run through Tether returns to the same broker and receives the QoS 1 messages queued while it was away', async () => {
    const { balancer, logs, ports } = await setup();
    const clientId = 'persist1';
    const subArgs = [...through(balancer), '-t', 'p/#', '-i', clientId, '-c', '-q', '1', '-v'];

    // First run: subscribe, then exit (-E) leaving a persistent session behind.
    const first = await tools.run('mosquitto_sub', [...subArgs, '-E']);
    expect(first.code).toBe(0);
    const home = await stickOwner(balancer, clientId);
    const homeLog = logs.get(home)!;
    expect(homeLog.connectionsOf(clientId)).toEqual([{ broker: home, clientId, protocol: 'p2', clean: false }]);
    // mosquitto_sub -E has exited, but the broker's log line about it may still be in the pipe.
    if (!homeLog.lines.some((l) => l.includes(`Client ${clientId} disconnected`))) await homeLog.nextLine(`Client ${clientId} disconnected`);

    // Published on the broker that holds the session: the only one that can queue them.
    const expected = ['p/1 first', 'p/2 second', 'p/3 third'];
    for (const line of expected) {
      const [topic, message] = line.split(' ') as [string, string];
      const pub = await tools.run('mosquitto_pub', [...direct(ports.get(home)!), '-t', topic, '-m', message, '-q', '1']);
      expect(pub.code).toBe(0);
    }

    // Second run: -C 3 exits after three messages, -W 20 gives up after 20 s (exit code 27).
    const second = await tools.run('mosquitto_sub', [...subArgs, '-C', '3', '-W', '20'], 30_000);
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: '' });
    expect(second.stdout.trim().split('\n')).toEqual(expected);
    expect(homeLog.connectionsOf(clientId)).toHaveLength(2);
    expect(logs.get([...ports.keys()].find((n) => n !== home)!)!.connectionsOf(clientId)).toEqual([]);
  });
});
