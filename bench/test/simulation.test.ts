import { describe, expect, it } from 'vitest';
import { chain, reproducible, run } from './helpers.ts';

/** The simulator's answers where they are known in advance, and its reproducibility. */

describe('removing one of two backends, with a stick table', () => {
  // No churn: the only reconnects are those the removal forces, so every number is known.
  const doc = {
    clients: { count: 1_000, persistent: 1 },
    churn: { rate: 0 },
    events: [{ at: '30m', type: 'remove', backend: 'b' }],
    chains: [['stick-table', 'least-connections']],
  };

  it('moves exactly the sessions of the removed backend, and that is the minimum', async () => {
    const result = await run(doc);
    const c = result.chains[0]!;
    expect(result.windows.map((w) => w.label)).toEqual(['steady', 'remove b']);
    // least-connections fills two empty backends evenly: 500 each.
    const [steady, removal] = c.windows;
    expect(steady).toMatchObject({ reconnects: 0, moved: 0, forced: 0 });
    expect(removal).toMatchObject({ reconnects: 500, sessionReconnects: 500, moved: 500, forced: 500, kept: 0, refused: 0 });
    // Nobody could have kept a session, so stickiness is undefined rather than 0 or 1.
    expect(removal!.stickiness).toBeUndefined();
    expect(c.sessions).toEqual({ a: 1_000, b: 0 });
    expect(c.connections).toEqual({ a: 1_000, b: 0 });
  });

  it('counts only persistent sessions: clean clients move too but have nothing to lose', async () => {
    const result = await run({ ...doc, clients: { count: 1_000, persistent: 0 } });
    const removal = result.chains[0]!.windows[1]!;
    expect(removal.reconnects).toBe(500);
    expect(removal).toMatchObject({ sessionReconnects: 0, moved: 0, forced: 0 });
  });
});

describe('stickiness under ordinary churn', () => {
  const chains = [['stick-table', 'least-connections'], ['round-robin'], ['rendezvous-hash', 'least-connections']];

  it('is about 1 for a stick table and about 1/2 for round-robin over two backends', async () => {
    const result = await run({ chains });
    const sticky = chain(result, 'stick-table+least-connections').totals;
    const rr = chain(result, 'round-robin').totals;
    expect(sticky.sessionReconnects).toBeGreaterThan(1_000);
    expect(sticky.stickiness).toBeGreaterThan(0.99);
    expect(sticky.moved).toBe(0);
    expect(rr.stickiness).toBeGreaterThan(0.35);
    expect(rr.stickiness).toBeLessThan(0.65);
    expect(rr.moved).toBeGreaterThan(500);
  });

  it('a hash is sticky without a table, until the set of backends changes', async () => {
    const result = await run({ chains, events: [{ at: '1h', type: 'add', backend: 'c' }] });
    const hash = chain(result, 'rendezvous-hash+least-connections');
    const [steady, added] = hash.windows;
    expect(steady!.stickiness).toBe(1);
    // Rendezvous hashing sends about a third of the keys to the new backend: those sessions move,
    // though none had to (the minimum is 0). The stick table moves none.
    expect(added!.forced).toBe(0);
    expect(added!.moved / added!.sessionReconnects).toBeGreaterThan(0.22);
    expect(added!.moved / added!.sessionReconnects).toBeLessThan(0.45);
    expect(chain(result, 'stick-table+least-connections').windows[1]).toMatchObject({ moved: 0, forced: 0 });
    // The new backend does get clients, from everyone's first reconnect after it joined.
    expect(hash.connections.c).toBeGreaterThan(0);
  });

  it('never moves more than the minimum with a stick table whose expiry matches the sessions', async () => {
    const result = await run({
      chains: [['stick-table', 'least-connections']],
      events: [
        { at: '20m', type: 'restart', backend: 'a', downtime: '5m' },
        { at: '50m', type: 'drain', backend: 'b', for: '10m' },
        { at: '80m', type: 'flap', backend: 'a', down: '1m', up: '1m', count: 3 },
      ],
    });
    const c = result.chains[0]!;
    for (const w of c.windows) expect(w.moved).toBe(w.forced);
    // Each event did force moves: the test is not passing vacuously.
    for (const w of c.windows.slice(1)) expect(w.forced).toBeGreaterThan(0);
  });

  it('a session expired before its client came back counts as expired, not as kept or moved', async () => {
    // Offline for about an hour on average against a 10-minute expiry: most sessions expire.
    const result = await run({ sessionExpiry: '10m', churn: { rate: 1, reconnectDelay: '1h' }, chains: [['stick-table', 'least-connections']] });
    const t = result.chains[0]!.totals;
    expect(t.expired).toBeGreaterThan(t.sessionReconnects);
  });
});

describe('balance', () => {
  it('is perfect for least-connections in steady state and degrades after a restart with a stick table', async () => {
    const result = await run({
      chains: [['least-connections'], ['stick-table', 'least-connections']],
      events: [{ at: '1h', type: 'restart', backend: 'b', downtime: '2m' }],
    });
    const lc = chain(result, 'least-connections').balance;
    const sticky = chain(result, 'stick-table+least-connections').balance;
    expect(lc.series.maxMean.length).toBe(120);
    expect(lc.series.maxMean[30]).toBeLessThan(1.05);
    // Right after b is back it is empty: the other one has everything (max/mean = 2 with two backends).
    expect(sticky.series.maxMean[62]).toBeGreaterThan(1.9);
    // The stick table keeps every client where it went during the outage; least-connections evens out.
    expect(sticky.maxMean.final!).toBeGreaterThan(1.8);
    expect(lc.maxMean.final!).toBeLessThan(1.2);
    expect(lc.cv.final!).toBeLessThan(sticky.cv.final!);
  });
});

describe('reproducibility', () => {
  const doc = {
    clients: { count: 3_000, distribution: 'zipf', exponent: 1.1, persistent: 0.6 },
    events: [
      { at: '30m', type: 'restart', backend: 'a', downtime: '3m' },
      { at: '1h', type: 'add', backend: 'c' },
    ],
    // random-two-choices draws from Math.random: the run must still be reproducible.
    chains: [['random-two-choices'], ['stick-table@persistent', 'least-connections'], ['rendezvous-hash', 'round-robin']],
  };

  it('the same seed gives identical results', async () => {
    const first = await run({ ...doc, seed: 7 });
    const second = await run({ ...doc, seed: 7 });
    expect(reproducible(second)).toEqual(reproducible(first));
  });

  it('another seed gives other results', async () => {
    const first = await run({ ...doc, seed: 7 });
    const other = await run({ ...doc, seed: 8 });
    expect(reproducible(other)).not.toEqual(reproducible(first));
  });

  it('puts Math.random back after the run', async () => {
    const original = Math.random;
    await run({ ...doc, chains: [['random-two-choices']] });
    expect(Math.random).toBe(original);
  });

  it('a chain gives the same results whatever chains run before it', async () => {
    const alone = await run({ ...doc, chains: [['random-two-choices']] });
    const after = await run(doc);
    expect(reproducible({ ...after, chains: [chain(after, 'random-two-choices')] })).toEqual(reproducible(alone));
  });
});
