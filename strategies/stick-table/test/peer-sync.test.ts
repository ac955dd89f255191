import { createPeerNetwork, testConn, type TestPeer } from '@tether/core/testing';
import { createLogger, Stats, validateOptions, type Backend, type ConnInfo, type Strategy, type TableView } from '@tether/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import stickTable from '../src/index.ts';
import { announceInterval, TOUCH_FLUSH_MS } from '../src/peer-sync.ts';

// Several workers' stick tables kept in step through the real relay and worker side of the peer
// channels, in one process (createPeerNetwork), each table with its own clock as a worker has.

const backend = (id: string): Backend => ({ id, host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections: 0 });
const B1 = backend('b1');
const B2 = backend('b2');
const BOTH = [B1, B2];

let nextId = 1;
const conn = (key: string): ConnInfo => testConn({ id: nextId++, key, keySource: 'client-id', connect: { clientId: key } });

const lifetimes: AbortController[] = [];
afterEach(() => {
  for (const c of lifetimes.splice(0)) c.abort();
  vi.useRealTimers();
});

const clock = { t: 10_000_000 };

async function worker(peer: TestPeer, options: Record<string, unknown> = {}) {
  const stats = new Stats();
  const lifetime = new AbortController();
  lifetimes.push(lifetime);
  const ctx = { log: createLogger('silent'), stats: stats.scope('stick_table'), now: () => clock.t, signal: lifetime.signal, backends: BOTH, peers: peer.channel('strategy:0:stick-table') };
  const strategy: Strategy = await stickTable.create(ctx, validateOptions(stickTable, options) as never);
  const entry = (key: string) => (strategy.table!() as TableView).entries.find((e) => e.key === key);
  return { strategy, entry, stats, lifetime };
}

/** select on this worker, splice to what it chose (or `fallback`), as the pipeline does. */
async function connect(w: Awaited<ReturnType<typeof worker>>, c: ConnInfo, fallback: Backend): Promise<Backend> {
  const s = await w.strategy.select(c, BOTH);
  const chosen = s.kind === 'selected' ? s.backend : fallback;
  w.strategy.onSpliced?.(c, chosen);
  return chosen;
}

describe('stick table across workers', () => {
  it('a key learned on one worker is matched on the other; use counts only local connections', async () => {
    const net = createPeerNetwork();
    const [p1, p2] = [net.add(), net.add()];
    const w1 = await worker(p1);
    const w2 = await worker(p2);
    await p1.sync();
    await p2.sync();
    const first = conn('client-a');
    expect(await connect(w1, first, B2)).toBe(B2);
    await net.settle();
    expect(w1.entry('client-a')).toMatchObject({ backend: 'b2', use: 1 });
    expect(w2.entry('client-a')).toMatchObject({ backend: 'b2', use: 0, hits: 0 });
    // The reconnect lands on worker 2 and goes to the same backend.
    const again = conn('client-a');
    expect(await connect(w2, again, B1)).toBe(B2);
    // One reconnect, one hit (the match; the store that follows is not another).
    expect(w2.entry('client-a')).toMatchObject({ backend: 'b2', use: 1, hits: 1 });
  });

  it('conflicting learns on two workers converge on the last one in the primary\'s order', async () => {
    const net = createPeerNetwork();
    const [p1, p2] = [net.add(), net.add()];
    const w1 = await worker(p1);
    const w2 = await worker(p2);
    await p1.sync();
    await p2.sync();
    w1.strategy.onSpliced!(conn('k'), B1);
    w2.strategy.onSpliced!(conn('k'), B2);
    await net.settle();
    expect(w1.entry('k')!.backend).toBe(w2.entry('k')!.backend);
    expect(w1.entry('k')!.use + w2.entry('k')!.use).toBe(2);
  });

  it('a disconnect refreshes last-seen on every worker (within a flush interval), so idle expiry agrees', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const net = createPeerNetwork();
    const [p1, p2] = [net.add(), net.add()];
    const w1 = await worker(p1, { expire: '10s' });
    const w2 = await worker(p2, { expire: '10s' });
    await p1.sync();
    await p2.sync();
    const c = conn('k');
    w1.strategy.onSpliced!(c, B1);
    await net.settle();
    clock.t += 8_000;
    w1.strategy.onClosed!(c, B1);
    vi.advanceTimersByTime(TOUCH_FLUSH_MS);
    await net.settle();
    clock.t += 8_000; // 16 s after the learn, 8 s after the disconnect
    expect(w1.entry('k')).toMatchObject({ backend: 'b1', use: 0 });
    expect(w2.entry('k')).toMatchObject({ backend: 'b1', use: 0 });
    expect(w2.entry('k')!.expiresInMs).toBe(w1.entry('k')!.expiresInMs);
    clock.t += 2_000;
    // Expired on both at the same moment: neither matches any more.
    expect((await w1.strategy.select(conn('k'), BOTH)).kind).toBe('abstain');
    expect((await w2.strategy.select(conn('k'), BOTH)).kind).toBe('abstain');
  });

  it('a key in use on one worker does not expire on the others while the connection lives', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const net = createPeerNetwork();
    const [p1, p2] = [net.add(), net.add()];
    const w1 = await worker(p1, { expire: '6s' });
    const w2 = await worker(p2, { expire: '6s' });
    await p1.sync();
    await p2.sync();
    w1.strategy.onSpliced!(conn('held'), B2);
    await net.settle();
    const every = announceInterval(6_000);
    expect(every).toBe(2_000);
    for (let i = 0; i < 10; i++) {
      clock.t += every;
      vi.advanceTimersByTime(every);
      await net.settle();
      expect(w2.entry('held'), `after ${(i + 1) * every} ms`).toMatchObject({ backend: 'b2' });
    }
  });

  it('a restarted worker learns the table from the others before it serves', async () => {
    const net = createPeerNetwork();
    const p1 = net.add();
    const w1 = await worker(p1, { expire: '30m' });
    await p1.sync();
    for (let i = 0; i < 1_200; i++) w1.strategy.onSpliced!(conn(`c${i}`), i % 2 ? B1 : B2);
    await net.settle();
    clock.t += 60_000;
    const p3 = net.add();
    const w3 = await worker(p3, { expire: '30m' });
    expect(await p3.sync()).toBe(true);
    await net.settle();
    expect((w3.strategy.table!() as TableView).used).toBe(1_200);
    expect(w3.entry('c7')).toMatchObject({ backend: 'b1', use: 0 });
    expect(await connect(w3, conn('c8'), B1)).toBe(B2);
  });

  it('a reconnect to the same backend sends nothing at once; a move to another backend does', async () => {
    const net = createPeerNetwork();
    const [p1, p2] = [net.add(), net.add()];
    const w1 = await worker(p1);
    const w2 = await worker(p2);
    await p1.sync();
    await p2.sync();
    const c = conn('k');
    w1.strategy.onSpliced!(c, B1);
    await net.settle();
    const learnedAt = w2.entry('k')!.lastSeen;
    w1.strategy.onClosed!(c, B1);
    clock.t += 1_000;
    // Same backend: no learn goes out (the touches wait for the next flush, not run here).
    w1.strategy.onSpliced!(conn('k'), B1);
    await net.settle();
    expect(w2.entry('k')).toMatchObject({ backend: 'b1', lastSeen: learnedAt });
    // Another backend: the learn goes out at once.
    w1.strategy.onSpliced!(conn('k'), B2);
    await net.settle();
    expect(w2.entry('k')).toMatchObject({ backend: 'b2', lastSeen: clock.t });
  });

  it('match-only tables do not add the keys other workers have', async () => {
    const net = createPeerNetwork();
    const [p1, p2] = [net.add(), net.add()];
    const w1 = await worker(p1);
    const w2 = await worker(p2, { mode: 'match-only' });
    await p1.sync();
    await p2.sync();
    w1.strategy.onSpliced!(conn('k'), B1);
    await net.settle();
    expect(w2.entry('k')).toBeUndefined();
  });
});
