import { describe, expect, it } from 'vitest';
import { ClientRefusedError, PluginHookError } from '../../src/errors.ts';
import { StrategyChain } from '../../src/pipeline/strategy-chain.ts';
import { ABSTAIN, refuse, selected, type Backend, type Selection, type Strategy } from '../../src/plugin.ts';
import { backend, capturingLogger, connInfo } from '../fixtures.ts';

const A = backend('a');
const B = backend('b');
const OFFERED: readonly Backend[] = [A, B];

function chainOf(...strategies: [string, Strategy][]): { chain: StrategyChain; lines: Record<string, unknown>[] } {
  const { log, lines } = capturingLogger('warn');
  return { chain: new StrategyChain(strategies.map(([name, product]) => ({ name, product })), log), lines };
}

const answer = (result: Selection | (() => Selection)): Strategy => ({ select: typeof result === 'function' ? result : () => result });

async function hookError(promise: Promise<unknown>): Promise<PluginHookError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(PluginHookError);
    return err as PluginHookError;
  }
  throw new Error('expected a PluginHookError');
}

describe('StrategyChain.select', () => {
  it('returns the first answer that is not an abstention, with the strategy name', async () => {
    const asked: string[] = [];
    const { chain } = chainOf(
      ['first', answer(() => (asked.push('first'), ABSTAIN))],
      ['second', answer(() => (asked.push('second'), selected(B)))],
      ['third', answer(() => (asked.push('third'), selected(A)))],
    );
    await expect(chain.select(connInfo(), OFFERED)).resolves.toEqual({ backend: B, strategy: 'second', remembered: false });
    expect(asked).toEqual(['first', 'second']);
  });

  it('awaits async strategies in order', async () => {
    const { chain } = chainOf(
      ['remote-miss', { select: async () => ABSTAIN }],
      ['remote-hit', { select: () => Promise.resolve(selected(A)) }],
    );
    await expect(chain.select(connInfo(), OFFERED)).resolves.toEqual({ backend: A, strategy: 'remote-hit', remembered: false });
  });

  it('returns undefined when every strategy abstains', async () => {
    const { chain } = chainOf(['a', answer(ABSTAIN)], ['b', { select: async () => ABSTAIN }]);
    await expect(chain.select(connInfo(), OFFERED)).resolves.toBeUndefined();
  });

  it('does not ask any strategy when no backend is offered', async () => {
    let asked = false;
    const { chain } = chainOf(['a', answer(() => ((asked = true), ABSTAIN))]);
    await expect(chain.select(connInfo(), [])).resolves.toBeUndefined();
    expect(asked).toBe(false);
  });

  it('passes the connection and exactly the offered backends', async () => {
    const conn = connInfo({}, 'k');
    let seen: [unknown, unknown] | undefined;
    const { chain } = chainOf(['spy', { select: (c, b) => ((seen = [c, b]), selected(b[0]!)) }]);
    await chain.select(conn, OFFERED);
    expect(seen?.[0]).toBe(conn);
    expect(seen?.[1]).toBe(OFFERED);
  });

  it.each([
    ['throws', (): Selection => { throw new Error('table corrupt'); }],
    ['rejects', (): Promise<Selection> => Promise.reject(new Error('table corrupt'))],
  ])('turns a strategy that %s into a PluginHookError and stops the chain', async (_name, select) => {
    let laterAsked = false;
    const { chain } = chainOf(['broken', { select }], ['later', answer(() => ((laterAsked = true), selected(A)))]);
    const err = await hookError(chain.select(connInfo(), OFFERED));
    expect(err.message).toBe('plugin "broken" failed in select: table corrupt');
    expect(err.reason).toBe('plugin_error');
    expect(laterAsked).toBe(false);
  });

  it('rejects a strategy that chooses a backend it was not offered', async () => {
    const { chain } = chainOf(['rogue', answer(selected(backend('c')))]);
    const err = await hookError(chain.select(connInfo(), OFFERED));
    expect(err.message).toMatch(/plugin "rogue" failed in select: chose backend c, which was not offered/);
  });

  it('rejects a look-alike copy of an offered backend (identity, not id, is checked)', async () => {
    const { chain } = chainOf(['copier', answer(selected({ ...A }))]);
    await hookError(chain.select(connInfo(), OFFERED));
  });

  it('rejects an offered backend that was excluded from this call', async () => {
    const { chain } = chainOf(['stale', answer(selected(A))]);
    await hookError(chain.select(connInfo(), [B]));
  });
});

describe('StrategyChain notifications', () => {
  it('tells every strategy about a splice, even after one throws, and logs the failure', () => {
    const told: string[] = [];
    const { chain, lines } = chainOf(
      ['first', { select: () => ABSTAIN, onSpliced: () => void told.push('first') }],
      ['broken', { select: () => ABSTAIN, onSpliced: () => { throw new Error('disk full'); } }],
      ['silent', { select: () => ABSTAIN }],
      ['last', { select: () => ABSTAIN, onSpliced: (_c, b) => void told.push(`last:${b.id}`) }],
    );
    expect(() => chain.spliced(connInfo(), A)).not.toThrow();
    expect(told).toEqual(['first', 'last:a']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, plugin: 'broken', hook: 'onSpliced', err: 'disk full', msg: 'strategy hook failed' });
  });

  it('tells every strategy about a close, even after one throws', () => {
    const told: string[] = [];
    const { chain, lines } = chainOf(
      ['broken', { select: () => ABSTAIN, onClosed: () => { throw new Error('nope'); } }],
      ['last', { select: () => ABSTAIN, onClosed: (_c, b) => void told.push(b.id) }],
    );
    chain.closed(connInfo(), B);
    expect(told).toEqual(['b']);
    expect(lines[0]).toMatchObject({ plugin: 'broken', hook: 'onClosed' });
  });

  it('collects the tables of the strategies that keep one, passing the limit', async () => {
    const view = (name: string, limit?: number) => ({ name, type: 'string' as const, size: limit ?? -1, used: 0, entries: [] });
    const { chain } = chainOf(
      ['t1', { select: () => ABSTAIN, table: (limit) => view('t1', limit) }],
      ['none', { select: () => ABSTAIN }],
      ['t2', { select: () => ABSTAIN, table: (limit) => view('t2', limit) }],
    );
    expect((await chain.tables({ limit: 5 })).map((t) => [t.name, t.size])).toEqual([['t1', 5], ['t2', 5]]);
  });

  it('closes every strategy, awaiting each, and logs a failing one without stopping', async () => {
    const closed: string[] = [];
    const { chain, lines } = chainOf(
      ['async', { select: () => ABSTAIN, close: async () => void closed.push('async') }],
      ['broken', { select: () => ABSTAIN, close: () => Promise.reject(new Error('stuck')) }],
      ['sync', { select: () => ABSTAIN, close: () => void closed.push('sync') }],
    );
    await expect(chain.close()).resolves.toBeUndefined();
    expect(closed).toEqual(['async', 'sync']);
    expect(lines[0]).toMatchObject({ plugin: 'broken', hook: 'close', err: 'stuck' });
  });
});

describe('StrategyChain confirm (a later choice, taken over by an earlier strategy)', () => {
  it('asks the strategies before the one that chose, in order; the first selection wins and carries remembered', async () => {
    const asked: string[] = [];
    const { chain } = chainOf(
      ['shared', { select: () => ABSTAIN, confirm: (_c, choice) => (asked.push(`shared:${choice.id}`), selected(A, { remembered: true })) }],
      ['other', { select: () => ABSTAIN, confirm: () => (asked.push('other'), selected(B)) }],
      ['last', answer(selected(B))],
    );
    await expect(chain.select(connInfo(), OFFERED)).resolves.toEqual({ backend: A, strategy: 'shared', remembered: true });
    expect(asked).toEqual(['shared:b']);
  });

  it('keeps the choice when confirm answers undefined or ABSTAIN (sync or async), and never asks the chooser or later ones', async () => {
    const asked: string[] = [];
    const { chain } = chainOf(
      ['none', { select: () => ABSTAIN, confirm: async () => void asked.push('none') }],
      ['abstains', { select: () => ABSTAIN, confirm: () => (asked.push('abstains'), ABSTAIN) }],
      ['chooser', { select: () => selected(B), confirm: () => (asked.push('chooser'), selected(A)) }],
      ['after', { select: () => ABSTAIN, confirm: () => (asked.push('after'), selected(A)) }],
    );
    await expect(chain.select(connInfo(), OFFERED)).resolves.toEqual({ backend: B, strategy: 'chooser', remembered: false });
    expect(asked).toEqual(['none', 'abstains']);
  });

  it('skips a strategy whose when condition does not apply to the connection', async () => {
    const log = capturingLogger('warn').log;
    const chain = new StrategyChain([
      { name: 'persistent-only', when: 'persistent', product: { select: () => ABSTAIN, confirm: () => selected(A) } },
      { name: 'last', product: answer(selected(B)) },
    ], log);
    await expect(chain.select(connInfo({ clean: true }), OFFERED)).resolves.toMatchObject({ backend: B, strategy: 'last' });
  });

  it('a confirm that throws or picks a backend that was not offered is that plugin\'s fault', async () => {
    const { chain: throws } = chainOf(['bad', { select: () => ABSTAIN, confirm: () => { throw new Error('redis exploded'); } }], ['last', answer(selected(B))]);
    expect((await hookError(throws.select(connInfo(), OFFERED))).message).toBe('plugin "bad" failed in confirm: redis exploded');
    const { chain: stray } = chainOf(['bad', { select: () => ABSTAIN, confirm: () => selected(backend('zzz')) }], ['last', answer(selected(B))]);
    expect((await hookError(stray.select(connInfo(), OFFERED))).message).toBe('plugin "bad" failed in confirm: chose backend zzz, which was not offered');
  });
});

describe('StrategyChain table edits', () => {
  it('fans set, delete and clear out to every strategy that keeps a table and counts what changed', async () => {
    const calls: string[] = [];
    const { chain } = chainOf(
      ['t1', { select: () => ABSTAIN, setEntry: (k, b) => void calls.push(`t1 set ${k}=${b.id}`), deleteEntry: (k) => (calls.push(`t1 del ${k}`), true), clearEntries: (b) => (calls.push(`t1 clear ${b}`), 3) }],
      ['plain', { select: () => ABSTAIN }],
      ['t2', { select: () => ABSTAIN, setEntry: async () => void calls.push('t2 set'), deleteEntry: async () => false, clearEntries: async () => 1 }],
    );
    await expect(chain.setEntry('k', A)).resolves.toEqual({ tables: 2, changed: 2 });
    await expect(chain.deleteEntry('k')).resolves.toEqual({ tables: 2, changed: 1 });
    await expect(chain.clearEntries('a')).resolves.toEqual({ tables: 2, changed: 4 });
    expect(calls).toEqual(['t1 set k=a', 't2 set', 't1 del k', 't1 clear a']);
  });

  it('names the plugin whose edit failed', async () => {
    const { chain } = chainOf(['full', { select: () => ABSTAIN, setEntry: () => { throw new Error('the table is full'); } }]);
    expect((await hookError(chain.setEntry('k', A))).message).toBe('plugin "full" failed in setEntry: the table is full');
  });
});

describe('StrategyChain refusals (admission strategies)', () => {
  it('a refusal ends the chain: later strategies are not asked, and the error carries the reason and the CONNECT\'s version', async () => {
    const asked: string[] = [];
    const { chain } = chainOf(['guard', answer(() => (asked.push('guard'), refuse('kick_loop', 'too many takeovers')))], ['pick', answer(() => (asked.push('pick'), selected(A)))]);
    const err = await chain.select(connInfo(), OFFERED).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ClientRefusedError);
    expect(err).toMatchObject({ reason: 'kick_loop', plugin: 'guard', protocolVersion: 4, message: 'refused by guard: too many takeovers' });
    expect(asked).toEqual(['guard']);
  });

  it('a reason that would not make a counter name is the plugin\'s fault', async () => {
    const { chain } = chainOf(['guard', answer(refuse('Kick Loop!', 'x'))]);
    expect((await hookError(chain.select(connInfo(), OFFERED))).message).toMatch(/refused with reason "Kick Loop!" \(snake_case, at most 40 characters\)/);
  });

  it('confirm may not refuse (a choice was made; refusing is for select)', async () => {
    const guard: Strategy = { select: () => ABSTAIN, confirm: () => refuse('late', 'x') };
    const { chain } = chainOf(['guard', guard], ['pick', answer(selected(A))]);
    expect((await hookError(chain.select(connInfo(), OFFERED))).message).toMatch(/refused from confirm/);
  });
});
