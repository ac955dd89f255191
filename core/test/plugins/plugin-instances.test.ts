import { describe, expect, it } from 'vitest';
import { PluginError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { ABSTAIN, PLUGIN_API_VERSION, type PeerChannel, type PluginContext, type TetherPlugin } from '../../src/plugin.ts';
import { ChainBuilder, reloadKept, retire, stableJson } from '../../src/plugins/plugin-instances.ts';
import type { LoaderContext } from '../../src/plugins/plugin-loader.ts';
import { PluginRegistry } from '../../src/plugins/plugin-registry.ts';
import { Stats } from '../../src/stats.ts';

/**
 * How a reload keeps, replaces and retires plugin products: a made-up strategy plugin records
 * every create (with the product it was given as `previous`), reload and close.
 */
interface Made {
  readonly n: number;
  readonly options: Record<string, unknown>;
  readonly previous: unknown;
  readonly signal: AbortSignal;
  readonly peers: PeerChannel | undefined;
  closed: number;
  reloaded: number;
}

function setup() {
  const made: Made[] = [];
  const plugin = (name: string): TetherPlugin => ({
    name, kind: 'strategy', apiVersion: PLUGIN_API_VERSION,
    options: { size: { doc: 'size', format: 'nat', default: 10 }, tag: { doc: 'tag', format: String, default: '' } },
    create: (ctx: PluginContext, options: Record<string, unknown>) => {
      const record: Made = { n: made.length + 1, options, previous: ctx.previous, signal: ctx.signal, peers: ctx.peers, closed: 0, reloaded: 0 };
      made.push(record);
      return { select: () => ABSTAIN, record, close: () => void record.closed++, reload: () => void record.reloaded++ };
    },
  }) as TetherPlugin;
  const registry = new PluginRegistry();
  registry.register(plugin('table'));
  registry.register(plugin('other'));
  registry.register({ name: 'broken', kind: 'strategy', apiVersion: PLUGIN_API_VERSION, create: () => { throw new Error('no'); } } as TetherPlugin);
  const opened: string[] = [];
  const released: string[] = [];
  const lifetime = new AbortController();
  const ctx: LoaderContext = {
    registry, baseDir: process.cwd(), log: createLogger('silent'), stats: new Stats(), now: () => 0, signal: lifetime.signal, backends: [],
    peers: (name) => {
      opened.push(name);
      return { self: 1, name } as unknown as PeerChannel;
    },
    releasePeers: (channel) => void released.push((channel as unknown as { name: string }).name),
  };
  const recordOf = (product: unknown): Made => (product as { record: Made }).record;
  return { made, ctx, opened, released, lifetime, recordOf };
}

const entry = (use: string, options: Record<string, unknown> = {}) => ({ use, options, when: 'always' as const });

describe('ChainBuilder across a reload', () => {
  it('keeps the very product of an entry whose plugin and options are unchanged (whatever the key order), and creates nothing', async () => {
    const { made, ctx, recordOf } = setup();
    const first = new ChainBuilder(ctx);
    const [a] = await first.chain('strategy', [entry('table', { size: 5, tag: 'x' })], 'select');
    const second = new ChainBuilder(ctx, first.instances);
    const [b] = await second.chain('strategy', [entry('table', { tag: 'x', size: 5 })], 'select');
    expect(b!.product).toBe(a!.product);
    expect(made).toHaveLength(1);
    expect(second.created).toEqual([]);
    expect(second.leftovers()).toEqual([]);
    expect(recordOf(b!.product).previous).toBeUndefined();
  });

  it('creates a new product for changed options, handing it the one it replaces as previous; the old one is left over', async () => {
    const { ctx, recordOf } = setup();
    const first = new ChainBuilder(ctx);
    const [old] = await first.chain('strategy', [entry('table', { size: 5 })], 'select');
    const second = new ChainBuilder(ctx, first.instances);
    const [fresh] = await second.chain('strategy', [entry('table', { size: 50 })], 'select');
    expect(fresh!.product).not.toBe(old!.product);
    expect(recordOf(fresh!.product).previous).toBe(old!.product);
    expect(second.leftovers().map((i) => i.product)).toEqual([old!.product]);
  });

  it('an unchanged entry keeps its product even when an earlier, changed entry of the same plugin could have taken it over', async () => {
    const { ctx, recordOf } = setup();
    const first = new ChainBuilder(ctx);
    const [one, two] = await first.chain('strategy', [entry('table', { tag: 'one' }), entry('table', { tag: 'two' })], 'select');
    const second = new ChainBuilder(ctx, first.instances);
    const [changed, kept] = await second.chain('strategy', [entry('table', { tag: 'ONE' }), entry('table', { tag: 'two' })], 'select');
    expect(kept!.product).toBe(two!.product);
    expect(recordOf(changed!.product).previous).toBe(one!.product);
  });

  it('never hands over across chains or plugins: a stick table in `select` is not the previous of one in another scope', async () => {
    const { ctx, recordOf } = setup();
    const first = new ChainBuilder(ctx);
    await first.chain('strategy', [entry('table')], 'select');
    const second = new ChainBuilder(ctx, first.instances);
    const [elsewhere] = await second.chain('strategy', [entry('table')], 'listener:x');
    const [other] = await second.chain('strategy', [entry('other')], 'select');
    expect(recordOf(elsewhere!.product).previous).toBeUndefined();
    expect(recordOf(other!.product).previous).toBeUndefined();
    expect(second.leftovers()).toHaveLength(1);
  });

  it('gives each product its own lifetime, ended by retire (close called, peer channel released) or by the balancer stopping', async () => {
    const { ctx, lifetime, recordOf, opened, released } = setup();
    const builder = new ChainBuilder(ctx);
    const [a, b] = await builder.chain('strategy', [entry('table', { tag: 'a' }), entry('table', { tag: 'b' })], 'select');
    expect(opened).toHaveLength(2);
    expect(opened[0]).toMatch(/^strategy:select:table:[0-9a-f]{8}$/);
    await retire([builder.instances[0]!], ctx.log, ctx.releasePeers);
    expect(recordOf(a!.product)).toMatchObject({ closed: 1 });
    expect(recordOf(a!.product).signal.aborted).toBe(true);
    expect(recordOf(b!.product).signal.aborted).toBe(false);
    expect(released).toEqual([opened[0]]);
    lifetime.abort();
    expect(recordOf(b!.product).signal.aborted).toBe(true);
  });

  it('reloadKept calls reload on the products a reload kept', async () => {
    const { ctx, recordOf } = setup();
    const builder = new ChainBuilder(ctx);
    const [a] = await builder.chain('strategy', [entry('table')], 'select');
    await reloadKept(builder.instances, ctx.log);
    expect(recordOf(a!.product).reloaded).toBe(1);
  });

  it('a create that fails leaves what the failing build made for the caller to retire, and the error names the plugin', async () => {
    const { ctx, made } = setup();
    const builder = new ChainBuilder(ctx);
    const err = await builder.chain('strategy', [entry('table'), entry('broken')], 'select').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as Error).message).toBe('plugin "broken": create() failed: no');
    expect(builder.created).toHaveLength(1);
    await retire(builder.created, ctx.log);
    expect(made[0]!.closed).toBe(1);
  });
});

describe('stableJson', () => {
  it('sorts object keys at every depth, and keeps array order', () => {
    expect(stableJson({ b: 1, a: { d: [2, 1], c: null } })).toBe('{"a":{"c":null,"d":[2,1]},"b":1}');
  });
});
