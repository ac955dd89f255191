import { testConn, type TestConnOptions } from '@tether/core/testing';
import { createLogger, PLUGIN_API_VERSION, Stats, validateOptions, type Backend, type ConnInfo, type Strategy } from '@tether/core';
import { describe, expect, it } from 'vitest';
import leastConnections from '../src/index.ts';

const backend = (id: string, activeConnections = 0): Backend =>
  ({ id, host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections });

const conn = (key: string | undefined): ConnInfo => testConn({ key, keySource: undefined, connect: { clientId: key ?? '' } } as TestConnOptions);

async function make(): Promise<Strategy> {
  const ctx = { log: createLogger('silent'), stats: new Stats().scope('least_connections'), now: Date.now, signal: new AbortController().signal, backends: [] };
  return leastConnections.create(ctx, validateOptions(leastConnections, {}) as never);
}

describe('least-connections plugin', () => {
  it('is a strategy for this API version with no options', () => {
    expect(leastConnections).toMatchObject({ name: 'least-connections', kind: 'strategy', apiVersion: PLUGIN_API_VERSION });
    expect(() => validateOptions(leastConnections, { weight: 1 })).toThrow(/least-connections.*'weight' not declared/);
  });

  it('declares that it always answers, so it can end a select chain', async () => {
    expect((await make()).alwaysAnswers).toBe(true);
  });

  it.each([['a keyed', 'dev1'], ['a keyless', undefined]])('selects the least loaded backend for %s client', async (_name, key) => {
    const strategy = await make();
    const offered = [backend('a', 3), backend('b', 1)];
    expect(await strategy.select(conn(key), offered)).toEqual({ kind: 'selected', backend: offered[1] });
  });

  it('abstains only when no backend is offered', async () => {
    expect(await (await make()).select(conn('x'), [])).toEqual({ kind: 'abstain' });
  });

  it('keeps its tie rotation per instance', async () => {
    const offered = [backend('a'), backend('b')];
    const one = await make();
    const two = await make();
    const pick = async (s: Strategy) => { const r = await s.select(conn('x'), offered); return r.kind === 'selected' ? r.backend.id : 'none'; };
    expect([await pick(one), await pick(one), await pick(two)]).toEqual(['a', 'b', 'a']);
  });
});
