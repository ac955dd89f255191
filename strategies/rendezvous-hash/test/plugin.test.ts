import { createLogger, Stats, type Backend, type ConnInfo } from '@tether/core';
import { describe, expect, it } from 'vitest';
import { rendezvousHash } from '../src/plugin.ts';

const backend = (id: string): Backend => ({ id, host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections: 0 });
const conn = (key: string | undefined): ConnInfo => ({ key } as ConnInfo);
const ctx = () => ({ log: createLogger('silent'), stats: new Stats().scope('rendezvous_hash'), now: Date.now, signal: new AbortController().signal, backends: [] });

describe('rendezvous-hash plugin', () => {
  it('abstains for a keyless client, so the chain falls through', async () => {
    const strategy = await rendezvousHash.create(ctx(), {});
    expect(strategy.select(conn(undefined), [backend('a'), backend('b')])).toEqual({ kind: 'abstain' });
  });

  it('sends a key to the same backend from two independent instances', async () => {
    const pool = [backend('a'), backend('b'), backend('c')];
    const one = await rendezvousHash.create(ctx(), {});
    const two = await rendezvousHash.create(ctx(), {});
    for (let i = 0; i < 200; i++) {
      expect(one.select(conn(`k${i}`), pool)).toEqual(two.select(conn(`k${i}`), pool));
    }
  });

  it('is not marked as always answering (it cannot end a chain)', async () => {
    expect((await rendezvousHash.create(ctx(), {})).alwaysAnswers).toBeFalsy();
  });
});
