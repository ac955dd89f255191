import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { Cleanup, delay, waitFor, waitForLog } from '../harness/poll.ts';
import { connectBytes, RawClient } from '../harness/raw-mqtt-client.ts';
import { RecordedConnection, RecordingBackend } from '../harness/recording-backend.ts';

/**
 * The splice: once the CONNECT is replayed Tether is a TCP pipe. The backend here is a raw
 * recording server (not a broker), so a test can half-close, stay silent or stream megabytes
 * from the backend side at will, and see exactly what arrived.
 */

// Generous bounds for a loaded 2-core machine: the test project does not inherit the root
// vitest.config's testTimeout, and some tests here wait out idle timeouts on purpose.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const MiB = 1024 * 1024;

interface Spliced {
  readonly balancer: TestBalancer;
  readonly backend: RecordingBackend;
  readonly client: RawClient;
  readonly upstream: RecordedConnection;
  readonly connect: Buffer;
}

/** A balancer in front of one recording backend, and one client spliced through it. */
async function splicedClient(clientId: string, overrides: Record<string, unknown> = {}): Promise<Spliced> {
  const backend = cleanup.add(await RecordingBackend.start({ id: 'rec' }), (b) => b.close());
  const balancer = cleanup.add(await startBalancer({ backends: [backend.spec], ...overrides }), (b) => b.close());
  // allowHalfOpen: the client must be able to keep writing after the backend's FIN, and vice versa.
  const client = cleanup.add(await RawClient.connect(balancer.port, { parse: false, allowHalfOpen: true }), (c) => c.destroy());
  const connect = connectBytes(clientId, 4);
  await client.write(connect);
  const upstream = await waitFor(() => backend.connections[0], { what: 'Tether to connect to the backend' });
  await waitFor(() => upstream.length >= connect.length, { what: 'the CONNECT at the backend' });
  return { balancer, backend, client, upstream, connect };
}

/** Resolves once `socket`'s write has been handed to the kernel. */
function writeOn(socket: NodeJS.WritableStream, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (err?: Error | null) => (err ? reject(err) : resolve())));
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('half-close', () => {
  it('client FIN reaches the backend, which can still answer; then both sides close', async () => {
    const { balancer, client, upstream, connect } = await splicedClient('half-client');
    const last = Buffer.from('last words from the client');
    await client.write(last);
    client.socket.end();

    await waitFor(() => upstream.ended, { what: "the client's FIN at the backend" });
    expect(upstream.bytes().equals(Buffer.concat([connect, last]))).toBe(true);
    // Half-closed, not closed: the way back is still open.
    expect(client.isClosed).toBe(false);
    expect(client.gotEnd).toBe(false);

    const reply = Buffer.from('the backend answers after the client FIN');
    await writeOn(upstream.socket, reply);
    upstream.socket.end();

    const closed = await client.waitClosed();
    expect(client.received().equals(reply)).toBe(true);
    expect(closed).toEqual({ gotEnd: true, error: undefined });
    await waitFor(() => upstream.closed, { what: 'the backend connection to close' });
    const line = await waitForLog(balancer.logs, { msg: 'connection closed', key: 'half-client' });
    expect(line).toMatchObject({ reason: 'client_closed', bytesIn: connect.length + last.length, bytesOut: reply.length });
  });

  it('backend FIN reaches the client, which can still send; then both sides close', async () => {
    const { balancer, client, upstream, connect } = await splicedClient('half-server');
    const bye = Buffer.from('the backend is done talking');
    await writeOn(upstream.socket, bye);
    upstream.socket.end();

    await waitFor(() => client.gotEnd, { what: "the backend's FIN at the client" });
    expect(client.received().equals(bye)).toBe(true);
    expect(upstream.closed).toBe(false);

    const late = Buffer.from('the client still has something to say');
    await client.write(late);
    client.socket.end();

    await waitFor(() => upstream.ended && upstream.closed, { what: 'the late bytes and FIN at the backend, then its close' });
    expect(upstream.bytes().equals(Buffer.concat([connect, late]))).toBe(true);
    expect((await client.waitClosed()).error).toBeUndefined();
    const line = await waitForLog(balancer.logs, { msg: 'connection closed', key: 'half-server' });
    expect(line).toMatchObject({ reason: 'server_closed', bytesIn: connect.length + late.length, bytesOut: bye.length });
  });
});

describe('idle timeouts', () => {
  it('timeouts.client closes an idle spliced connection on both sides (client_timeout)', async () => {
    const { balancer, client, upstream } = await splicedClient('idle-client', { 'timeouts.client': '500ms', 'timeouts.server': '60s' });
    // Tether logs 'connection closed' only once both of its sockets have closed...
    const line = await waitForLog(balancer.logs, { msg: 'connection closed', key: 'idle-client' });
    expect(line.reason).toBe('client_timeout');
    expect(balancer.server.stats.get('connections_active')).toBe(0);
    // ...and both peers were told (FIN). They allow half-open sockets, so they do not close by themselves.
    await waitFor(() => client.gotEnd && upstream.ended, { what: 'the FIN at the client and at the backend' });
    expect(client.received().length).toBe(0);
  });

  it('timeouts.server closes an idle spliced connection on both sides (server_timeout)', async () => {
    const { balancer, client, upstream } = await splicedClient('idle-server', { 'timeouts.client': '60s', 'timeouts.server': '500ms' });
    const line = await waitForLog(balancer.logs, { msg: 'connection closed', key: 'idle-server' });
    expect(line.reason).toBe('server_timeout');
    expect(balancer.server.stats.get('connections_active')).toBe(0);
    await waitFor(() => client.gotEnd && upstream.ended, { what: 'the FIN at the client and at the backend' });
  });

  it('is an idle timer: traffic keeps a connection open well past it', async () => {
    const { balancer, client, upstream, connect } = await splicedClient('busy-client', { 'timeouts.client': '1500ms', 'timeouts.server': '1500ms' });
    // 60 writes 50 ms apart: about 3 s of traffic, twice the idle timeout, never 1.5 s of silence.
    // (The pause paces the traffic; nothing waits on it.)
    for (let i = 0; i < 60; i++) {
      expect(client.gotEnd || upstream.ended, `closed during traffic, after ${i} writes`).toBe(false);
      await client.write('.');
      await delay(50);
    }
    await waitFor(() => upstream.length === connect.length + 60, { what: 'all 60 bytes at the backend' });
    expect(client.gotEnd || upstream.ended).toBe(false);
    expect(balancer.server.stats.get('connections_active')).toBe(1);
    // Once quiet, it does time out.
    const line = await waitForLog(balancer.logs, { msg: 'connection closed', key: 'busy-client' });
    expect(line.reason).toMatch(/^(client|server)_timeout$/);
  });
});

describe('back-pressure', () => {
  it('a client that does not read holds the backend back, and a slow reader still gets every byte', async () => {
    const { client, upstream } = await splicedClient('slow-reader');
    client.socket.pause();
    const total = 16 * MiB;
    const data = randomBytes(total);
    // Many writes, so the backend's writableLength shows how much is still waiting to be sent.
    for (let offset = 0; offset < total; offset += 64 * 1024) upstream.socket.write(data.subarray(offset, offset + 64 * 1024));

    // Wait until the flow settles (the queue stops shrinking for 10 polls in a row). With
    // back-pressure it settles with bytes still queued at the backend: kernel buffers plus
    // Tether's stream buffers hold only a few MiB. A Tether that read everything into memory
    // would let the backend's queue drain to zero.
    let last = -1;
    let steady = 0;
    await waitFor(() => {
      const pending = upstream.socket.writableLength;
      steady = pending === last ? steady + 1 : 0;
      last = pending;
      return steady >= 10;
    }, { what: 'the transfer to settle while the client is paused', intervalMs: 50 });
    expect(upstream.socket.writableLength).toBeGreaterThan(0);
    expect(client.received().length).toBe(0);

    // Now read, slowly: pause for a moment after every chunk.
    let chunks = 0;
    client.socket.on('data', () => {
      if (++chunks % 4 !== 0) return;
      client.socket.pause();
      setTimeout(() => client.socket.resume(), 2);
    });
    client.socket.resume();
    await waitFor(() => client.received().length >= total, { what: () => `${total} bytes at the client (has ${client.received().length})`, timeoutMs: 60_000, intervalMs: 50 });
    const received = client.received();
    expect(received.length).toBe(total);
    expect(sha256(received)).toBe(sha256(data));
  });

  it('a large upload to a backend that reads slowly arrives intact', async () => {
    const { client, upstream, connect } = await splicedClient('slow-backend');
    const total = 8 * MiB;
    const data = randomBytes(total);
    let chunks = 0;
    upstream.socket.on('data', () => {
      if (++chunks % 4 !== 0) return;
      upstream.socket.pause();
      setTimeout(() => upstream.socket.resume(), 2);
    });
    // Written with back-pressure respected on the client side too (each write awaited).
    for (let offset = 0; offset < total; offset += 256 * 1024) await client.write(data.subarray(offset, offset + 256 * 1024));
    await waitFor(() => upstream.length >= connect.length + total, { what: () => `${total} bytes at the backend (has ${upstream.length - connect.length})`, timeoutMs: 60_000, intervalMs: 50 });
    const received = upstream.bytes();
    expect(received.length).toBe(connect.length + total);
    expect(received.subarray(0, connect.length).equals(connect)).toBe(true);
    expect(sha256(received.subarray(connect.length))).toBe(sha256(data));
  });
});
