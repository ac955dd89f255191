import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { IdleSweeper, type IdleWatched } from '../../src/pipeline/idle-sweeper.ts';

/** A connected pair of real loopback sockets. */
async function socketPair(servers: Server[]): Promise<[Socket, Socket]> {
  const server = createServer();
  servers.push(server);
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  return [client, await accepted];
}

function watched(client: Socket, server: Socket, onIdle: (reason: string, at: number) => void): IdleWatched {
  return { client, server, idle: (reason) => onIdle(reason, performance.now()), clientBytes: 0, serverBytes: 0, clientActiveAt: 0, serverActiveAt: 0 };
}

describe('IdleSweeper', () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const s of servers.splice(0)) s.close();
  });

  async function pairs(): Promise<{ client: Socket; server: Socket; clientPeer: Socket }> {
    const [client, clientPeer] = await socketPair(servers);
    const [server] = await socketPair(servers);
    sockets.push(client, clientPeer, server);
    clientPeer.resume();
    return { client, server, clientPeer };
  }

  it('fires client_timeout once the client side has been silent for the client timeout', async () => {
    const { client, server } = await pairs();
    const sweeper = new IdleSweeper(150, 60_000);
    const started = performance.now();
    const fired = await new Promise<{ reason: string; at: number }>((resolve) => sweeper.watch(watched(client, server, (reason, at) => resolve({ reason, at }))));
    expect(fired.reason).toBe('client_timeout');
    expect(fired.at - started).toBeGreaterThanOrEqual(150);
    expect(sweeper.size).toBe(0);
  });

  it('fires server_timeout when only the server side is silent', async () => {
    const { client, server } = await pairs();
    const sweeper = new IdleSweeper(60_000, 150);
    const reason = await new Promise<string>((resolve) => sweeper.watch(watched(client, server, resolve)));
    expect(reason).toBe('server_timeout');
  });

  it('traffic on a side keeps it alive; it fires only after the traffic stops', async () => {
    const { client, server } = await pairs();
    const sweeper = new IdleSweeper(200, 60_000);
    let writes = 0;
    let lastWriteAt = 0;
    // Bytes every 40 ms for 10 writes (~400 ms, twice the timeout), then silence.
    const ticker = setInterval(() => {
      if (writes++ >= 10) return clearInterval(ticker);
      client.write('x');
      lastWriteAt = performance.now();
    }, 40);
    const fired = await new Promise<{ reason: string; at: number }>((resolve) => sweeper.watch(watched(client, server, (reason, at) => resolve({ reason, at }))));
    clearInterval(ticker);
    expect(writes).toBeGreaterThanOrEqual(10);
    expect(fired.reason).toBe('client_timeout');
    expect(fired.at - lastWriteAt).toBeGreaterThanOrEqual(200 - 1);
  });

  it('an unwatched connection never fires, and the timer stops with the last one', async () => {
    const { client, server } = await pairs();
    const sweeper = new IdleSweeper(50, 50);
    let fired = false;
    const entry = watched(client, server, () => (fired = true));
    sweeper.watch(entry);
    sweeper.unwatch(entry);
    expect(sweeper.size).toBe(0);
    // A second, watched entry proves ticks still happen (it fires) while the first stays silent.
    const { client: c2, server: s2 } = await pairs();
    await new Promise<string>((resolve) => sweeper.watch(watched(c2, s2, resolve)));
    expect(fired).toBe(false);
  });

  it('a timeout of 0 is off: that side never fires, and with both off nothing is watched', async () => {
    const { client, server } = await pairs();
    const off = new IdleSweeper(0, 0);
    off.watch(watched(client, server, () => undefined));
    expect(off.enabled).toBe(false);
    expect(off.size).toBe(0);
    // Client side off, server side 100 ms: only server_timeout can fire, though both are silent.
    const serverOnly = new IdleSweeper(0, 100);
    const reason = await new Promise<string>((resolve) => serverOnly.watch(watched(client, server, resolve)));
    expect(reason).toBe('server_timeout');
  });
});
