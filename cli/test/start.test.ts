import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import mqttPacket from 'mqtt-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deadLoopbackPort, EXAMPLES, killAll, lines, poll, runTether, STACK_TRACE, startTether, within, type LogLine, type RunningTether } from './helpers/cli.ts';
import { closeAllClients, connectClient, disconnect, nextMessage } from './helpers/mqtt.ts';

/** `tether start`, run as a user runs it: a real process, real MQTT clients, real brokers. */

const T = 60_000;
/** Also run the tests that show known, reported bugs (they fail until those are fixed). */

interface TableJson {
  tables: { name: string; type: string; size: number; used: number; entries: { key: string; backend: string; use: number; expiresInMs: number; hits: number }[] }[];
}

async function tableJson(admin: string): Promise<TableJson> {
  const r = await runTether(['table', 'show', '--admin', admin, '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as TableJson;
}

function holdPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}

const closeServer = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

describe('tether start with no backends: two embedded brokers', () => {
  let tether: RunningTether;

  beforeAll(async () => {
    tether = await startTether(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  }, T);
  afterEach(() => closeAllClients());
  afterAll(() => killAll());

  it('logs that it started the embedded brokers, then where it listens, as JSON lines', () => {
    const started = tether.logs.find((l) => typeof l.msg === 'string' && /started 2 embedded aedes brokers/.test(l.msg));
    expect(started, 'the embedded-brokers log line').toBeDefined();
    const brokers = started!.brokers as string[];
    expect(brokers).toHaveLength(2);
    expect(brokers[0]).toMatch(/^embedded1=127\.0\.0\.1:\d+$/);
    expect(brokers[1]).toMatch(/^embedded2=127\.0\.0\.1:\d+$/);
    // The listener is on the loopback port the OS chose, the brokers are its backends.
    expect(tether.host).toBe('127.0.0.1');
    expect(tether.port).toBeGreaterThan(0);
    expect(tether.listening.backends).toEqual(brokers);
    expect(tether.listening.admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(tether.listening).toMatchObject({ key: ['client-id'], select: ['stick-table', 'least-connections'], sinks: ['proxy-protocol'], level: 30 });
    // Every stdout line is a JSON log line; nothing on stderr.
    expect(tether.logs.filter((l) => l.unparsed)).toEqual([]);
    expect(tether.stderr()).toBe('');
  });

  it('accepts MQTT clients and a publish from one reaches a subscriber on the other broker; table show lists them', async () => {
    const { client: subscriber, connack } = await connectClient(tether.url, { clientId: 'subscriber1' });
    expect(connack.returnCode ?? connack.reasonCode ?? 0).toBe(0);
    await within(subscriber.subscribeAsync('tether/e2e/#', { qos: 1 }), 10_000, 'subscribe');
    const { client: publisher } = await connectClient(tether.url, { clientId: 'publisher1' });

    // least-connections put the second client on the other broker, so the message crosses brokers.
    const table = await tableJson(tether.admin!);
    expect(table.tables).toHaveLength(1);
    const entry = (key: string) => table.tables[0]!.entries.find((e) => e.key === key);
    expect(entry('subscriber1')).toMatchObject({ use: 1 });
    expect(entry('publisher1')).toMatchObject({ use: 1 });
    expect(entry('subscriber1')!.backend).toMatch(/^embedded[12]$/);
    expect(entry('publisher1')!.backend).not.toBe(entry('subscriber1')!.backend);

    const received = nextMessage(subscriber);
    await within(publisher.publishAsync('tether/e2e/hello', 'across the balancer', { qos: 1 }), 10_000, 'publish');
    expect(await received).toEqual({ topic: 'tether/e2e/hello', payload: 'across the balancer' });

    // The HAProxy-like text view.
    const text = await runTether(['table', 'show', '--admin', tether.admin!]);
    expect(text.code).toBe(0);
    expect(text.stderr).toBe('');
    const out = lines(text.stdout);
    expect(out[0]).toBe('# table: stick-table, type: string, size:100000, used:2');
    const sub = entry('subscriber1')!.backend;
    const subId = sub === 'embedded1' ? 1 : 2;
    expect(out).toContainEqual(expect.stringMatching(new RegExp(`^key=subscriber1 use=1 exp=\\d+ server_id=${subId} server_key=${sub} hits=0$`)));
    expect(out).toContainEqual(expect.stringMatching(new RegExp(`^key=publisher1 use=1 exp=\\d+ server_id=${3 - subId} server_key=embedded${3 - subId} hits=0$`)));

    await disconnect(publisher);
    await disconnect(subscriber);
  }, T);

  it('stops on SIGTERM sent to its PID: exit code 0, after closing the listener and the brokers', async () => {
    const brokers = (tether.logs.find((l) => Array.isArray(l.brokers))!.brokers as string[]).map((b) => Number(b.split(':').at(-1)));
    expect(await tether.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(tether.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['stopping', 'tether stopped']));
    // Nothing listens any more where the balancer and its brokers were.
    for (const port of [tether.port, ...brokers]) {
      const refused = await new Promise<boolean>((resolve) => {
        const s = connect({ host: '127.0.0.1', port }, () => {
          s.destroy();
          resolve(false);
        });
        s.once('error', () => resolve(true));
      });
      expect(refused, `127.0.0.1:${port} refuses connections`).toBe(true);
    }
  }, T);
});

describe('tether start stops on a signal', () => {
  afterEach(async () => {
    await closeAllClients();
    await killAll();
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('%s by PID: closes client connections, logs "tether stopped" and exits 0', async (signal) => {
    const tether = await startTether(['--listen', '127.0.0.1:0']);
    const { client } = await connectClient(tether.url, { clientId: `stays-connected-${signal}` });
    const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const result = await tether.stop(signal);
    expect(result).toEqual({ code: 0, signal: null });
    await within(clientClosed, 10_000, 'the client connection closed by the stopping balancer');
    expect(tether.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['stopping', 'tether stopped']));
    expect(tether.logs.find((l) => l.msg === 'stopping')).toMatchObject({ signal });
    expect(tether.stderr()).toBe('');
  }, T);

  // A supervisor signals as soon as it sees the readiness line; the handlers must already be there.
  it(
    "SIGTERM the moment 'tether listening' appears still stops cleanly, 5 times out of 5",
    async () => {
      for (let attempt = 1; attempt <= 5; attempt++) {
        const tether = await startTether(['--listen', '127.0.0.1:0', '--backend', 'x=127.0.0.1:1']);
        expect(await tether.stop('SIGTERM'), `attempt ${attempt}`).toEqual({ code: 0, signal: null });
      }
    },
    T,
  );
});

describe('tether start on an address that is taken', () => {
  let held: { server: Server; port: number };

  beforeAll(async () => {
    held = await holdPort();
  });
  afterAll(async () => {
    await killAll();
    await closeServer(held.server);
  });

  it('--listen in use: exits 1 with one line on stderr naming --listen, no stack trace', async () => {
    const r = await runTether(['start', '--listen', `127.0.0.1:${held.port}`]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([
      `tether: 127.0.0.1:${held.port} is already in use; choose another address with --listen (TETHER_LISTEN, config key listen)`,
    ]);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    // It did not print that it was listening.
    expect(r.stdout).not.toContain('tether listening');
  }, T);

  it('--admin in use: exits 1 with one line on stderr naming --admin, no stack trace', async () => {
    const r = await runTether(['start', '--listen', '127.0.0.1:0', '--admin', `127.0.0.1:${held.port}`]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([
      `tether: 127.0.0.1:${held.port} is already in use; choose another address with --admin (TETHER_ADMIN, config key admin.listen)`,
    ]);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stdout).not.toContain('tether listening');
  }, T);

  it('a bad --listen value is a one-line configuration error, exit 1', async () => {
    const r = await runTether(['start', '--listen', 'localhost']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tether: invalid configuration/);
    expect(r.stderr).toContain('listen: "localhost" is not host:port');
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stdout).toBe('');
  }, T);
});

describe('tether start --backend: your own brokers, and stickiness across reconnects', () => {
  let brokers: EmbeddedBroker[];
  let tether: RunningTether;
  let byName: Map<string, EmbeddedBroker>;
  /** Client id -> name of the backend whose broker has it connected, from the brokers' own events. */
  const connectedAt = new Map<string, string>();

  beforeAll(async () => {
    // Independent brokers: a client that lands on the other one finds no session there.
    brokers = await startEmbeddedBrokers(2, { cluster: false });
    byName = new Map([['alpha', brokers[0]!], ['beta', brokers[1]!]]);
    for (const [name, broker] of byName) {
      broker.aedes.on('client', (c) => connectedAt.set(c.id, name));
      broker.aedes.on('clientDisconnect', (c) => {
        if (connectedAt.get(c.id) === name) connectedAt.delete(c.id);
      });
    }
    tether = await startTether([
      '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0',
      '--backend', `alpha=127.0.0.1:${brokers[0]!.port}`,
      '--backend', `beta=127.0.0.1:${brokers[1]!.port}`,
    ]);
  }, T);
  afterEach(() => closeAllClients());
  afterAll(async () => {
    await killAll();
    await Promise.all((brokers ?? []).map((b) => b.close()));
  });

  /** The backend name whose broker has `clientId` connected right now. */
  const holder = (clientId: string): Promise<string> => poll(() => connectedAt.get(clientId), `a broker holding ${clientId}`);
  const closedLog = (key: string) => (l: LogLine) => l.msg === 'connection closed' && l.key === key;
  const activeConnections = async (): Promise<Record<string, number>> => {
    const res = await fetch(`http://${tether.admin}/backends`);
    const { backends } = (await res.json()) as { backends: { id: string; activeConnections: number }[] };
    return Object.fromEntries(backends.map((b) => [b.id, b.activeConnections]));
  };

  it('uses the given backends and starts no embedded broker', () => {
    expect(tether.logs.some((l) => typeof l.msg === 'string' && /embedded/.test(l.msg))).toBe(false);
    expect(tether.listening.backends).toEqual([`alpha=127.0.0.1:${brokers[0]!.port}`, `beta=127.0.0.1:${brokers[1]!.port}`]);
  });

  it('a persistent client reconnects to the broker that holds its session even when least-connections would pick the other', async () => {
    const { client: first, connack: firstConnack } = await connectClient(tether.url, { clientId: 'sticky-1', clean: false, protocolVersion: 4 });
    expect(firstConnack.sessionPresent).toBe(false);
    await within(first.subscribeAsync('sticky/#', { qos: 1 }), 10_000, 'subscribe');
    const home = await holder('sticky-1');
    const away = home === 'alpha' ? 'beta' : 'alpha';
    await disconnect(first);
    await tether.waitForLog(closedLog('sticky-1'));

    // While it is away, a message for it is queued in its session on its home broker.
    await new Promise<void>((resolve, reject) =>
      byName.get(home)!.aedes.publish({ cmd: 'publish', topic: 'sticky/offline', payload: Buffer.from('kept for you'), qos: 1, retain: false, dup: false, messageId: 0 }, (err) => (err ? reject(err) : resolve())),
    );

    // Load the home broker so that least-connections alone would send a new client away: keep a
    // filler that lands at home, let go of any that lands away (bounded).
    for (let i = 1; i <= 6; i++) {
      const { client: filler } = await connectClient(tether.url, { clientId: `filler-${i}` });
      if ((await holder(`filler-${i}`)) === home) break;
      await disconnect(filler);
      await tether.waitForLog(closedLog(`filler-${i}`));
    }
    expect(await activeConnections()).toEqual({ [home]: 1, [away]: 0 });

    const { client: again, connack, messages } = await connectClient(tether.url, { clientId: 'sticky-1', clean: false, protocolVersion: 4 });
    expect(connack.sessionPresent).toBe(true);
    expect(await holder('sticky-1')).toBe(home);
    await poll(() => (messages.length > 0 ? true : undefined), 'the message queued while offline');
    expect(messages).toEqual([{ topic: 'sticky/offline', payload: 'kept for you' }]);

    const table = await tableJson(tether.admin!);
    const entry = table.tables[0]!.entries.find((e) => e.key === 'sticky-1');
    expect(entry).toMatchObject({ backend: home, use: 1 });
    // Learned on the first connect; the reconnect is its one hit (the fillers' reconnects are theirs).
    expect(entry!.hits).toBe(1);
    await disconnect(again);
  }, T);
});

describe('tether start -c examples/seed.yaml, moved onto free loopback ports by flags', () => {
  let brokers: EmbeddedBroker[];
  let tether: RunningTether;
  const connectedAt = new Map<string, string>();

  beforeAll(async () => {
    brokers = await startEmbeddedBrokers(2, { cluster: false });
    brokers.forEach((broker, i) => {
      broker.aedes.on('client', (c) => connectedAt.set(c.id, `emqx${i + 1}`));
      broker.aedes.on('clientDisconnect', (c) => {
        if (connectedAt.get(c.id) === `emqx${i + 1}`) connectedAt.delete(c.id);
      });
    });
    // Flags win over the file: the listener, the admin API and the brokers move to loopback ports
    // free right now (the aedes brokers speak no PROXY protocol, so --backend drops sendProxy).
    tether = await startTether([
      '-c', join(EXAMPLES, 'seed.yaml'),
      '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0',
      '--backend', `emqx1=127.0.0.1:${brokers[0]!.port}`, '--backend', `emqx2=127.0.0.1:${brokers[1]!.port}`,
    ]);
  }, T);
  afterEach(() => closeAllClients());
  afterAll(async () => {
    await killAll();
    await Promise.all((brokers ?? []).map((b) => b.close()));
  });

  it('runs the seed chain: client-id key, stick-table then least-connections, over emqx1 and emqx2', () => {
    expect(tether.listening).toMatchObject({
      key: ['client-id'], select: ['stick-table', 'least-connections'], sinks: ['proxy-protocol'],
      backends: [`emqx1=127.0.0.1:${brokers[0]!.port}`, `emqx2=127.0.0.1:${brokers[1]!.port}`],
    });
  });

  it('len 32: client ids longer than 32 characters get entries of their own (digests), not one shared by their prefix as in HAProxy', async () => {
    const prefix = 'plant-7/line-3/sensor-0000000042'; // 32 characters
    expect(prefix).toHaveLength(32);
    await connectClient(tether.url, { clientId: `${prefix}/temperature` });
    const first = await poll(() => connectedAt.get(`${prefix}/temperature`), 'the broker of the first client');
    // With the first client connected, least-connections picks the other broker: no shared entry pulls it back.
    await connectClient(tether.url, { clientId: `${prefix}/humidity` });
    const second = await poll(() => connectedAt.get(`${prefix}/humidity`), 'the broker of the second client');
    expect(second).not.toBe(first);

    const table = (await tableJson(tether.admin!)).tables[0]!;
    expect(table.size).toBe(100_000);
    const digest = (id: string): string => `sha256:${createHash('sha256').update(id).digest('base64url')}`;
    expect(table.entries).toEqual(expect.arrayContaining([
      expect.objectContaining({ key: digest(`${prefix}/temperature`), backend: first, use: 1, expiresInMs: 30 * 60 * 1000 }),
      expect.objectContaining({ key: digest(`${prefix}/humidity`), backend: second, use: 1 }),
    ]));
  }, T);
});

const ipv6 = await new Promise<boolean>((resolve) => {
  const probe = createServer();
  probe.once('error', () => resolve(false));
  probe.listen({ host: '::1', port: 0 }, () => probe.close(() => resolve(true)));
});

describe(`tether start on IPv6 loopback${ipv6 ? '' : ' [skipped: ::1 is not available on this host]'}`, () => {
  afterEach(async () => {
    await closeAllClients();
    await killAll();
  });

  it.skipIf(!ipv6)('--listen [::1]:0 and --admin [::1]:0: logged in brackets, reachable by MQTT and by table show', async () => {
    const tether = await startTether(['--listen', '[::1]:0', '--admin', '[::1]:0']);
    expect(tether.listening.listen).toMatch(/^\[::1\]:\d+$/);
    expect(tether.listening.admin).toMatch(/^http:\/\/\[::1\]:\d+$/);
    const { client } = await connectClient(`mqtt://[::1]:${tether.port}`, { clientId: 'v6-client' });
    expect(client.connected).toBe(true);
    const r = await runTether(['table', 'show', '--admin', tether.admin!]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^key=v6-client use=1 /m);
  }, T);
});

describe('tether start: what a client sees when no broker can be reached, and what the log says', () => {
  let tether: RunningTether;
  let deadPort: number;

  beforeAll(async () => {
    deadPort = await deadLoopbackPort();
    tether = await startTether(['--listen', '127.0.0.1:0', '--backend', `gone=127.0.0.1:${deadPort}`, '--log-level', 'debug']);
  }, T);
  afterEach(() => closeAllClients());
  afterAll(() => killAll());

  it.each([
    [4, Buffer.from([0x20, 0x02, 0x00, 0x03])], // MQTT 3.1.1: return code 3, server unavailable
    [5, Buffer.from([0x20, 0x03, 0x00, 0x88, 0x00])], // MQTT 5: reason code 0x88, server unavailable
  ] as const)('MQTT level %i: a "server unavailable" CONNACK, then the connection closes', async (protocolVersion, expected) => {
    const clientId = `refused-v${protocolVersion}`;
    const socket = connect({ host: '127.0.0.1', port: tether.port });
    socket.on('error', () => undefined);
    let data = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (data = Buffer.concat([data, chunk])));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion, clean: true, clientId, keepalive: 30 } as mqttPacket.IConnectPacket));
    await within(closed, 15_000, 'the refused connection to close');
    expect(data).toEqual(expected);
    const sniffed = await tether.waitForLog((l) => l.msg === 'connect sniffed' && (l.mqtt as { clientId?: string } | undefined)?.clientId === clientId);
    const rejected = await tether.waitForLog((l) => l.msg === 'connection rejected' && l.conn === sniffed.conn);
    expect(rejected).toMatchObject({ level: 40, reason: 'no_backend', code: 'TETHER_ERR_NO_BACKEND', remote: '127.0.0.1' });
    expect(rejected.err).toContain('backend gone: connect failed: ECONNREFUSED');
  }, T);

  it('at debug level the CONNECT is logged, but never its password', async () => {
    const password = 'hunter2-do-not-log';
    const socket = connect({ host: '127.0.0.1', port: tether.port });
    socket.on('error', () => undefined);
    socket.resume(); // read (and drop) the CONNACK, so the close is seen
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'secretive', keepalive: 30, username: 'bob', password: Buffer.from(password) }));
    const sniffed = await tether.waitForLog((l) => l.msg === 'connect sniffed' && (l.mqtt as { clientId?: string } | undefined)?.clientId === 'secretive');
    expect(sniffed).toMatchObject({ level: 20, key: 'secretive', keySource: 'client-id', mqtt: { clientId: 'secretive', username: 'bob' } });
    await within(closed, 15_000, 'the refused connection to close');
    await tether.waitForLog((l) => l.msg === 'connection rejected' && l.conn === sniffed.conn);
    expect(JSON.stringify(tether.logs)).not.toContain(password);
  }, T);
});

describe('tether start --send-proxy: the PROXY header reaches the broker before the CONNECT', () => {
  let upstream: Server;
  let upstreamPort: number;
  let deliver: (bytes: Buffer) => void = () => undefined;
  /** The first bytes the next connection to the stand-in broker carries (PROXY header + CONNECT). */
  const nextUpstreamBytes = (): Promise<Buffer> => within(new Promise<Buffer>((resolve) => (deliver = resolve)), 15_000, 'bytes at the stand-in broker');

  beforeAll(async () => {
    // A stand-in broker: collects bytes until it holds a whole CONNECT after any PROXY header,
    // hands them to the test, and answers with a CONNACK so the client is connected.
    upstream = createServer((socket: Socket) => {
      let data = Buffer.alloc(0);
      let done = false;
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        if (done) return;
        data = Buffer.concat([data, chunk]);
        const at = connectOffset(data);
        if (at === undefined || data.length < at + 2 || data.length < at + 2 + data[at + 1]!) return;
        done = true;
        deliver(data);
        socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00]));
      });
    });
    await new Promise<void>((resolve) => upstream.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
    upstreamPort = (upstream.address() as AddressInfo).port;
  }, T);
  afterEach(async () => {
    await closeAllClients();
    await killAll();
  });
  afterAll(() => closeServer(upstream));

  it('v2: binary header with the client and listener addresses, then the client CONNECT unchanged', async () => {
    const tether = await startTether(['--listen', '127.0.0.1:0', '--backend', `broker=127.0.0.1:${upstreamPort}`, '--send-proxy', 'v2']);
    const received = nextUpstreamBytes();
    const { client } = await connectClient(tether.url, { clientId: 'proxied-v2', protocolVersion: 4 });
    const bytes = await received;
    const localPort = (client.stream as Socket).localPort!;

    expect(bytes.subarray(0, 12)).toEqual(Buffer.from('0d0a0d0a000d0a515549540a', 'hex'));
    expect(bytes[12]).toBe(0x21); // version 2, PROXY
    expect(bytes[13]).toBe(0x11); // TCP over IPv4
    expect(bytes.readUInt16BE(14)).toBe(12);
    expect([...bytes.subarray(16, 20)]).toEqual([127, 0, 0, 1]); // source: the client
    expect([...bytes.subarray(20, 24)]).toEqual([127, 0, 0, 1]); // destination: the listener
    expect(bytes.readUInt16BE(24)).toBe(localPort);
    expect(bytes.readUInt16BE(26)).toBe(tether.port);
    expect(parseConnect(bytes.subarray(28))).toMatchObject({ cmd: 'connect', clientId: 'proxied-v2', protocolVersion: 4 });
  }, T);

  it('v1: one text line, then the client CONNECT unchanged', async () => {
    const tether = await startTether(['--listen', '127.0.0.1:0', '--backend', `broker=127.0.0.1:${upstreamPort}`, '--send-proxy', 'v1']);
    const received = nextUpstreamBytes();
    const { client } = await connectClient(tether.url, { clientId: 'proxied-v1', protocolVersion: 4 });
    const bytes = await received;
    const localPort = (client.stream as Socket).localPort!;
    const end = bytes.indexOf('\r\n');
    expect(bytes.subarray(0, end).toString('latin1')).toBe(`PROXY TCP4 127.0.0.1 127.0.0.1 ${localPort} ${tether.port}`);
    expect(parseConnect(bytes.subarray(end + 2))).toMatchObject({ cmd: 'connect', clientId: 'proxied-v1' });
  }, T);

  it('without --send-proxy the broker receives the CONNECT first', async () => {
    const tether = await startTether(['--listen', '127.0.0.1:0', '--backend', `broker=127.0.0.1:${upstreamPort}`]);
    const received = nextUpstreamBytes();
    await connectClient(tether.url, { clientId: 'not-proxied', protocolVersion: 4 });
    const bytes = await received;
    expect(bytes[0]).toBe(0x10);
    expect(parseConnect(bytes)).toMatchObject({ cmd: 'connect', clientId: 'not-proxied' });
  }, T);

  it('a --send-proxy value other than none, v1, v2 is a usage error (exit 2)', async () => {
    const r = await runTether(['start', '--listen', '127.0.0.1:0', '--backend', `broker=127.0.0.1:${upstreamPort}`, '--send-proxy', 'v3']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual(['tether: --send-proxy must be one of none, v1, v2; got "v3"']);
  }, T);
});

/** Where the MQTT packet starts: after a PROXY v2 header, a PROXY v1 line, or at 0. Undefined while incomplete. */
function connectOffset(data: Buffer): number | undefined {
  if (data[0] === 0x0d) return data.length >= 16 ? 16 + data.readUInt16BE(14) : undefined;
  if (data.subarray(0, 6).toString('latin1') === 'PROXY ') {
    const eol = data.indexOf('\r\n');
    return eol < 0 ? undefined : eol + 2;
  }
  return 0;
}

function parseConnect(bytes: Buffer): mqttPacket.Packet {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: mqttPacket.Packet[] = [];
  parser.on('packet', (p) => packets.push(p));
  parser.on('error', (err) => {
    throw err;
  });
  parser.parse(bytes);
  expect(packets.length).toBeGreaterThanOrEqual(1);
  return packets[0]!;
}
