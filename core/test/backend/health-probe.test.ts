import { Aedes, type AuthenticateError } from 'aedes';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { IConnectPacket, Packet } from 'mqtt-packet';
import { AddressFamilyType, Command, ProxyProtocolIdentifier, ProxyProtocolVersion, V2ProxyProtocol } from 'proxy-protocol-js';
import { afterEach, describe, expect, it } from 'vitest';
import { probe, type ProbeResult, type ProbeSettings } from '../../src/backend/health-probe.ts';
import type { Backend } from '../../src/plugin.ts';
import { backend } from '../fixtures.ts';
// The scripted broker lives with the integration harness so the checker tests and these share it.
import { ScriptedBroker } from '../../../test/harness/ha-scripted-broker.ts';
import { waitFor } from '../../../test/harness/poll.ts';

/**
 * One health check against real servers on loopback: a plain TCP listener, an aedes broker (with
 * and without an authenticate hook), a scripted MQTT server for the failures a real broker cannot
 * be told to produce, and a listener whose accept queue is full for a connect that never completes.
 */

const SETTINGS: ProbeSettings = { type: 'tcp', timeoutMs: 2000, clientId: 'hc-probe', username: '', password: '' };
const tcp = (extra: Partial<ProbeSettings> = {}): ProbeSettings => ({ ...SETTINGS, type: 'tcp', ...extra });
const mqtt = (extra: Partial<ProbeSettings> = {}): ProbeSettings => ({ ...SETTINGS, type: 'mqtt', ...extra });
const at = (port: number, extra: Partial<Backend> = {}): Backend => backend('b', { port, ...extra });

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function scripted(script?: Parameters<typeof ScriptedBroker.start>[0]): Promise<ScriptedBroker> {
  const broker = await ScriptedBroker.start(script);
  closers.push(() => broker.close());
  return broker;
}

interface Credentials {
  readonly clientId: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
}

/**
 * A real aedes broker on port 0. Its authenticate hook records what each client presented and
 * lets `verdict` decide: true accepts, false answers "not successful" (aedes: CONNACK 5), an
 * error with a returnCode refuses with that code.
 */
async function aedesBroker(verdict: (c: Credentials) => boolean | AuthenticateError = () => true): Promise<{ port: number; aedes: Aedes; seen: Credentials[] }> {
  const seen: Credentials[] = [];
  const aedes = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      const entry = { clientId: client.id, username: username ?? undefined, password: password?.toString('utf8') };
      seen.push(entry);
      const answer = verdict(entry);
      if (answer instanceof Error) done(answer, false);
      else done(null, answer);
    },
  });
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    aedes.handle(s);
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  closers.push(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => aedes.close(() => resolve()));
  }));
  return { port: (server.address() as AddressInfo).port, aedes, seen };
}

/** A port nothing listens on: bound by us a moment ago, then closed, so a connect is refused. */
async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The bytes the scripted broker received on one connection, once the probe has closed it. */
async function closedConnection(broker: ScriptedBroker, n: number): Promise<{ raw: Buffer; header: Buffer | undefined; packets: Packet[] }> {
  const conn = await broker.waitForConnections(n);
  await waitFor(() => conn.closed, { what: `the probe to close connection #${n}` });
  return conn;
}

function expectFailure(result: ProbeResult, reason: RegExp | string): void {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  if (typeof reason === 'string') expect(result.reason).toBe(reason);
  else expect(result.reason).toMatch(reason);
}

describe('tcp check', () => {
  it('passes on a listening port and sends nothing (no PROXY header configured)', async () => {
    const broker = await scripted();
    await expect(probe(at(broker.port), tcp())).resolves.toEqual({ ok: true });
    const conn = await closedConnection(broker, 1);
    expect(conn.raw.length).toBe(0);
  });

  it('fails on a refused port, naming the error', async () => {
    const result = await probe(at(await refusedPort()), tcp());
    expectFailure(result, 'connect failed: ECONNREFUSED');
  });

  // Linux drops SYNs to a listener whose accept queue is full; other kernels may answer with a reset.
  it.skipIf(process.platform !== 'linux')('fails with a timeout when the connect never completes (listener whose accept queue is full)', async () => {
    // A listener in a worker thread whose event loop is blocked never accepts, so once its small
    // accept queue is full the kernel drops further SYNs and connects hang. The probes themselves
    // fill the queue (a connection closed by the client stays queued until accepted): the first
    // few pass, then one must time out. Bounded to 12 probes.
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const server = require('node:net').createServer();
      server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
        parentPort.postMessage(server.address().port);
        Atomics.wait(workerData, 0, 0);
        server.close();
      });`, { eval: true, workerData: gate });
    closers.push(async () => {
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await worker.terminate();
    });
    const port = await new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const results: ProbeResult[] = [];
    for (let i = 0; i < 12 && !results.some((r) => !r.ok); i++) results.push(await probe(at(port), tcp({ timeoutMs: 300 })));
    const failure = results.find((r) => !r.ok);
    expect(failure, `probes: ${JSON.stringify(results)}`).toBeDefined();
    // The first probe got in: the port is a live listener, the later timeout is the full queue.
    expect(results[0]).toEqual({ ok: true });
    expectFailure(failure!, 'tcp check timed out after 300 ms');
  });

  it('with sendProxy v2 sends exactly a PROXY v2 LOCAL header, then closes', async () => {
    const broker = await scripted();
    await expect(probe(at(broker.port, { sendProxy: 'v2' }), tcp())).resolves.toEqual({ ok: true });
    const conn = await closedConnection(broker, 1);
    // Decoded by an independent parser: version 2, command LOCAL, no addresses, nothing after it.
    expect(ProxyProtocolIdentifier.identify(new Uint8Array(conn.raw))).toBe(ProxyProtocolVersion.V2);
    const header = V2ProxyProtocol.parse(new Uint8Array(conn.raw));
    expect(header.command).toBe(Command.LOCAL);
    expect(header.addressFamilyType).toBe(AddressFamilyType.UNSPEC);
    expect(conn.raw.length).toBe(16);
  });

  it('with sendProxy v1 sends exactly "PROXY UNKNOWN\\r\\n", then closes', async () => {
    const broker = await scripted();
    await expect(probe(at(broker.port, { sendProxy: 'v1' }), tcp())).resolves.toEqual({ ok: true });
    const conn = await closedConnection(broker, 1);
    expect(conn.raw.toString('latin1')).toBe('PROXY UNKNOWN\r\n');
  });
});

describe('mqtt check', () => {
  it('passes on an aedes broker (CONNACK 0) and says DISCONNECT, so the broker forgets the check client', async () => {
    const broker = await aedesBroker();
    const disconnected = new Promise<string>((resolve) => broker.aedes.once('clientDisconnect', (c) => resolve(c.id)));
    await expect(probe(at(broker.port), mqtt())).resolves.toEqual({ ok: true });
    expect(broker.seen.map((s) => s.clientId)).toEqual(['hc-probe']);
    expect(await disconnected).toBe('hc-probe');
    await waitFor(() => broker.aedes.connectedClients === 0, { what: 'aedes to have no client left' });
  });

  it('sends the configured client id, user name and password; the broker accepts the right ones', async () => {
    const broker = await aedesBroker(({ username, password }) => (username === 'hc-user' && password === 's3cret') || Object.assign(new Error('bad credentials'), { returnCode: 4 }) as AuthenticateError);
    await expect(probe(at(broker.port), mqtt({ clientId: 'hc-id', username: 'hc-user', password: 's3cret' }))).resolves.toEqual({ ok: true });
    expect(broker.seen).toEqual([{ clientId: 'hc-id', username: 'hc-user', password: 's3cret' }]);
    // The same broker refuses a wrong password with CONNACK 4, and the check says so.
    const wrong = await probe(at(broker.port), mqtt({ clientId: 'hc-id', username: 'hc-user', password: 'nope' }));
    expectFailure(wrong, 'CONNACK refused: 4 (bad user name or password)');
  });

  it('fails with the reason when the broker refuses (authenticate hook says no: CONNACK 5)', async () => {
    // A hook answering "not successful" without an error: aedes refuses with 5, not authorized.
    const refusing = await aedesBroker(() => false);
    const result = await probe(at(refusing.port), mqtt());
    expectFailure(result, 'CONNACK refused: 5 (not authorized)');
    expect(refusing.seen.map((s) => s.clientId)).toEqual(['hc-probe']);
    expect(refusing.aedes.connectedClients).toBe(0);
  });

  it('without credentials configured sends neither user name nor password', async () => {
    const broker = await scripted();
    await expect(probe(at(broker.port), mqtt())).resolves.toEqual({ ok: true });
    const conn = await closedConnection(broker, 1);
    const connect = conn.packets[0] as IConnectPacket;
    expect(connect).toMatchObject({ cmd: 'connect', protocolVersion: 4, clean: true, clientId: 'hc-probe' });
    expect(connect.username).toBeUndefined();
    expect(connect.password).toBeUndefined();
    expect(conn.packets.map((p) => p.cmd)).toEqual(['connect', 'disconnect']);
  });

  it('fails with a timeout on a server that accepts but never answers, and closes its connection', async () => {
    const broker = await scripted(() => 'silent');
    const result = await probe(at(broker.port), mqtt({ timeoutMs: 200 }));
    expectFailure(result, 'mqtt check timed out after 200 ms');
    const conn = await closedConnection(broker, 1);
    expect(conn.packets.map((p) => p.cmd)).toEqual(['connect']);
  });

  it('fails on a refused port', async () => {
    expectFailure(await probe(at(await refusedPort()), mqtt()), 'connect failed: ECONNREFUSED');
  });

  it('fails when the server hangs up before answering', async () => {
    const broker = await scripted(() => 'close');
    expectFailure(await probe(at(broker.port), mqtt()), /connection closed before the check finished|ECONNRESET/);
  });

  it('fails when the server answers something other than a CONNACK', async () => {
    const broker = await scripted(() => ({ packet: { cmd: 'pingresp' } }));
    expectFailure(await probe(at(broker.port), mqtt()), 'expected CONNACK, got PINGRESP');
  });

  it.each([1, 2, 3])('names refusal code %i', async (code) => {
    const broker = await scripted(() => ({ connack: code }));
    const names: Record<number, string> = { 1: 'unacceptable protocol version', 2: 'identifier rejected', 3: 'server unavailable' };
    expectFailure(await probe(at(broker.port), mqtt()), `CONNACK refused: ${code} (${names[code]})`);
  });

  it('with sendProxy v2 puts a PROXY v2 LOCAL header in front of the CONNECT', async () => {
    const broker = await scripted();
    await expect(probe(at(broker.port, { sendProxy: 'v2' }), mqtt())).resolves.toEqual({ ok: true });
    const conn = await closedConnection(broker, 1);
    expect(conn.header).toBeDefined();
    // The first bytes on the wire, decoded independently: v2, LOCAL, UNSPEC; the rest is the CONNECT.
    const header = V2ProxyProtocol.parse(new Uint8Array(conn.raw));
    expect(header.command).toBe(Command.LOCAL);
    expect(header.addressFamilyType).toBe(AddressFamilyType.UNSPEC);
    expect(Buffer.from(header.data ?? []).equals(conn.raw.subarray(16))).toBe(true);
    expect(conn.raw[16]).toBe(0x10); // CONNECT's fixed header right after the 16-byte LOCAL block
    expect(conn.packets[0]).toMatchObject({ cmd: 'connect', clientId: 'hc-probe' });
  });

  it('with sendProxy v1 starts with "PROXY UNKNOWN\\r\\n", then the CONNECT', async () => {
    const broker = await scripted();
    await expect(probe(at(broker.port, { sendProxy: 'v1' }), mqtt())).resolves.toEqual({ ok: true });
    const conn = await closedConnection(broker, 1);
    expect(conn.raw.subarray(0, 15).toString('latin1')).toBe('PROXY UNKNOWN\r\n');
    expect(conn.header?.toString('latin1')).toBe('PROXY UNKNOWN\r\n');
    expect(conn.packets[0]).toMatchObject({ cmd: 'connect', clientId: 'hc-probe' });
  });
});
