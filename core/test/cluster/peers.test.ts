import { describe, expect, it } from 'vitest';
import { createPeerNetwork } from '../../src/cluster/in-memory-peers.ts';
import { PeerRelay, type WorkerLink } from '../../src/cluster/peer-relay.ts';
import type { PrimaryMessage } from '../../src/cluster/messages.ts';

/** A key → value map kept in step over a channel: messages are [key, value] overwrites. */
function replica(peer: ReturnType<ReturnType<typeof createPeerNetwork>['add']>, chunkSize = 2) {
  const state = new Map<string, string>();
  const seen: string[] = [];
  const channel = peer.channel();
  channel.onMessage((m, from) => {
    const [k, v] = m as [string, string];
    state.set(k, v);
    seen.push(`${from}:${k}=${v}`);
  });
  channel.onSnapshotRequest(function* () {
    const rows = [...state];
    for (let i = 0; i < rows.length; i += chunkSize) yield rows.slice(i, i + chunkSize);
  });
  channel.onSnapshot((chunk) => {
    for (const [k, v] of chunk as [string, string][]) state.set(k, v);
  });
  return { state, seen, set: (k: string, v: string) => channel.broadcast([k, v]) };
}

describe('peer channels through the primary', () => {
  it('every worker, the sender included, applies the same messages in the same order', async () => {
    const net = createPeerNetwork();
    const peers = [net.add(), net.add(), net.add()];
    const replicas = peers.map((p) => replica(p));
    for (const p of peers) await p.sync();
    // Conflicting writes from every worker in the same turn: the primary picks one order.
    replicas[0]!.set('k', 'from-1');
    replicas[1]!.set('k', 'from-2');
    replicas[2]!.set('k', 'from-3');
    replicas[1]!.set('other', 'x');
    await net.settle();
    expect(replicas[1]!.seen).toHaveLength(4);
    expect(replicas[0]!.seen).toEqual(replicas[1]!.seen);
    expect(replicas[2]!.seen).toEqual(replicas[1]!.seen);
    // Converged: the last write in the primary's order, on every worker.
    const last = replicas[0]!.seen.filter((s) => s.includes(':k=')).at(-1)!.split('=')[1];
    for (const r of replicas) expect(r.state.get('k')).toBe(last);
  });

  it('a worker that joins later gets the state in chunks, then the messages relayed meanwhile', async () => {
    const net = createPeerNetwork();
    const a = net.add();
    const ra = replica(a);
    await a.sync();
    for (let i = 0; i < 7; i++) ra.set(`key${i}`, 'old');
    await net.settle();
    const b = net.add();
    const rb = replica(b);
    const joined = b.sync();
    // Written while b joins: b must end with these, not the snapshot's older values.
    ra.set('key1', 'new');
    ra.set('key9', 'new');
    expect(await joined).toBe(true);
    await net.settle();
    expect(new Map([...rb.state].sort())).toEqual(new Map([...ra.state].sort()));
    expect(rb.state.get('key1')).toBe('new');
    expect(rb.state.size).toBe(8);
  });

  it('the first worker joins at once with nothing; a join survives the death of the worker giving the snapshot', async () => {
    const net = createPeerNetwork();
    const a = net.add();
    const ra = replica(a, 1);
    expect(await a.sync()).toBe(true);
    const b = net.add();
    const rb = replica(b, 1);
    await b.sync();
    for (let i = 0; i < 5; i++) ra.set(`k${i}`, 'v');
    await net.settle();
    expect(rb.state.size).toBe(5);
    // c joins; a (the oldest) starts answering and dies before it ends: b answers instead.
    const c = net.add();
    const rc = replica(c, 1);
    const joined = c.sync();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    a.leave();
    expect(await joined).toBe(true);
    await net.settle();
    expect(rc.state.size).toBe(5);
  });
});

describe('PeerRelay', () => {
  const link = (id: number, inbox: PrimaryMessage[]): WorkerLink => ({ id, send: (m) => inbox.push(m) });

  it('numbers batches and sends them only to joined workers', () => {
    const relay = new PeerRelay();
    const one: PrimaryMessage[] = [];
    const two: PrimaryMessage[] = [];
    const w1 = link(1, one);
    const w2 = link(2, two);
    relay.handle(w1, { t: 'tether:sync' });
    relay.handle(w2, { t: 'tether:peers', batch: [['c', 1]] });
    expect(one).toEqual([{ t: 'tether:snapshot-end', seq: 0 }, { t: 'tether:peers', seq: 1, from: 2, batch: [['c', 1]] }]);
    expect(two).toEqual([]);
    relay.handle(w2, { t: 'tether:sync' });
    expect(one.at(-1)).toEqual({ t: 'tether:snapshot-request', to: 2 });
    relay.handle(w1, { t: 'tether:snapshot-chunk', to: 2, channel: 'c', chunk: [1] });
    relay.handle(w1, { t: 'tether:snapshot-end', to: 2, seq: 1 });
    expect(two).toEqual([{ t: 'tether:snapshot-chunk', channel: 'c', chunk: [1] }, { t: 'tether:snapshot-end', seq: 1 }]);
    expect(relay.joined).toEqual([1, 2]);
    expect(relay.handle(w1, { t: 'tether:ready', listeners: {} })).toBe(false);
  });
});
