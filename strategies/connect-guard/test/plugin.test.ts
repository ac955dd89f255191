import { createLogger, Stats, validateOptions, type Backend, type ConnInfo, type Strategy, type TableView } from '@tether/core';
import { testConn } from '@tether/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import connectGuard from '../src/index.ts';

const lifetimes: AbortController[] = [];
afterEach(() => {
  for (const c of lifetimes.splice(0)) c.abort();
});

let nextId = 1;
function conn(key: string | undefined, dryRun = false): ConnInfo {
  return testConn({ id: nextId++, dryRun, ...(key !== undefined ? { key, keySource: 'client-id' } : {}), connect: { clientId: key ?? '' } });
}

async function make(options: Record<string, unknown> = {}) {
  const clock = { t: 1_000_000 };
  const stats = new Stats();
  const lifetime = new AbortController();
  lifetimes.push(lifetime);
  const ctx = { log: createLogger('silent'), stats: stats.scope('connect_guard'), now: () => clock.t, signal: lifetime.signal, backends: [] };
  const guard: Strategy = await connectGuard.create(ctx, validateOptions(connectGuard, options) as never);
  return { guard, clock, count: (name: string) => stats.get(`connect_guard_${name}`), table: () => guard.table!() as TableView };
}

const A = { id: 'a' } as Backend;

/** A takeover as the pipeline sees it: select (the guard abstains), then splice; the broker closes the other. */
async function takeover(guard: Strategy, key: string): Promise<string> {
  const c = conn(key);
  const s = await guard.select(c, [A]);
  if (s.kind === 'refuse') return s.reason;
  guard.onSpliced?.(c, A);
  return s.kind;
}

describe('connect-guard plugin', () => {
  it('has documented defaults: kick-loop damping on, per-source limits off', () => {
    expect(validateOptions(connectGuard, {})).toEqual({
      kickLoop: { takeovers: 5, window: '10s', recent: '500ms', backoff: '2s', maxBackoff: '5m' },
      perSource: { rate: 0, burst: 20 },
      size: 100_000,
    });
  });

  it.each([
    [{ kickLoop: { takeovers: -1 } }, /kickLoop.takeovers: must be a whole number/],
    [{ kickLoop: { window: '0s' } }, /kickLoop.window: must be a duration of at least 1ms/],
    [{ perSource: { rate: -2 } }, /perSource.rate: must be a number of connects per second/],
    [{ perSource: { burst: 0 } }, /perSource.burst: must be a whole number of at least 1/],
  ])('refuses %j', (options, message) => {
    expect(() => validateOptions(connectGuard, options)).toThrow(message);
  });

  it('never chooses: it abstains, or refuses the newest connection of a looping key', async () => {
    const { guard, count, table } = await make({ kickLoop: { takeovers: 3 } });
    guard.onSpliced?.(conn('twin'), A);
    expect([await takeover(guard, 'twin'), await takeover(guard, 'twin'), await takeover(guard, 'twin'), await takeover(guard, 'twin')]).toEqual(['abstain', 'abstain', 'kick_loop', 'kick_loop']);
    expect(count('kick_loops')).toBe(1);
    expect(count('kick_loop_refusals')).toBe(2);
    expect(table().entries).toEqual([expect.objectContaining({ key: 'twin', backend: '-', use: 3, hits: 3, flags: ['kick-loop', 'refusing'] })]);
  });

  it('lets a connection it let through alone on the chain\'s retries, and explain changes nothing', async () => {
    const { guard, table } = await make({ kickLoop: { takeovers: 2 } });
    guard.onSpliced?.(conn('k'), A);
    const c = conn('k');
    for (let i = 0; i < 5; i++) expect((await guard.select(c, [A])).kind).toBe('abstain');
    for (let i = 0; i < 5; i++) expect((await guard.select(conn('k', true), [A])).kind).toBe('abstain');
    expect(table().entries).toEqual([]);
  });

  it('forgets a loop on `table delete` (the operator forgives it)', async () => {
    const { guard, table } = await make({ kickLoop: { takeovers: 2 } });
    guard.onSpliced?.(conn('twin'), A);
    await takeover(guard, 'twin');
    expect(await takeover(guard, 'twin')).toBe('kick_loop');
    expect(await guard.deleteEntry!('twin')).toBe(true);
    expect(table().entries).toEqual([]);
    expect(await takeover(guard, 'twin')).toBe('abstain');
  });
});
