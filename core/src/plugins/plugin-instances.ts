import type { Logger } from 'pino';
import type { ChainEntry } from '../config/types.ts';
import { describe } from '../errors.ts';
import type { PeerChannel, PluginKind, TetherPlugin } from '../plugin.ts';
import { createProduct, resolvePlugin, validateOptions, type LoaderContext, type Named, type Products } from './plugin-loader.ts';

/**
 * One product made by a plugin from one chain entry, with the lifetime of that product alone: a
 * reload that keeps the entry keeps the product (and its state), one that drops or changes it
 * retires the product without touching the others.
 */
export interface PluginInstance {
  /** Where the entry sits and what it is: equal identities make equal products. */
  readonly identity: string;
  /** The chain it belongs to: `key`, `select`, `sinks`, or `listener:NAME`. */
  readonly scope: string;
  readonly kind: PluginKind;
  readonly plugin: string;
  readonly product: unknown;
  readonly lifetime: AbortController;
  readonly peers: PeerChannel | undefined;
}

interface Planned {
  readonly entry: ChainEntry;
  readonly plugin: TetherPlugin;
  readonly options: Record<string, unknown>;
  readonly identity: string;
  instance?: PluginInstance;
}

/**
 * Builds the plugin chains of one generation. Given the previous generation's instances, an entry
 * whose plugin and validated options are unchanged gets the very same product back (a reload
 * keeps a stick table's contents, a TLS transport's contexts, a plugin's timers); an entry whose
 * options changed gets a new product, created with the one it replaces as `ctx.previous` so it can
 * take the state over. What is left of the previous generation is for the caller to retire once
 * the new one is in place (`leftovers`).
 */
export class ChainBuilder {
  readonly #ctx: LoaderContext;
  readonly #unclaimed: PluginInstance[];
  readonly #replaced: PluginInstance[] = [];
  /** Every instance of the generation being built, reused or new. */
  readonly instances: PluginInstance[] = [];
  /** The instances this build created (to retire if the generation is abandoned). */
  readonly created: PluginInstance[] = [];

  constructor(ctx: LoaderContext, previous: readonly PluginInstance[] = []) {
    this.#ctx = ctx;
    this.#unclaimed = [...previous];
  }

  async chain<K extends PluginKind>(kind: K, entries: readonly ChainEntry[], scope: string = kind): Promise<Named<Products[K]>[]> {
    const planned: Planned[] = [];
    for (const entry of entries) {
      const plugin = await resolvePlugin(kind, entry.use, this.#ctx);
      const options = validateOptions(plugin, entry.options);
      planned.push({ entry, plugin, options, identity: `${scope}\u0000${kind}\u0000${plugin.name}\u0000${stableJson(options)}` });
    }
    // Exact matches first, so an entry with changed options never takes over a product that a
    // later, unchanged entry would have kept.
    for (const p of planned) p.instance = take(this.#unclaimed, (i) => i.identity === p.identity);
    for (const p of planned) p.instance ??= await this.#create(kind, scope, p);
    for (const p of planned) this.instances.push(p.instance!);
    return planned.map((p) => ({ name: p.plugin.name, product: p.instance!.product as Products[K], when: p.entry.when ?? 'always' }));
  }

  /** The previous generation's instances this one does not use (dropped, or replaced by a new product). */
  leftovers(): PluginInstance[] {
    return [...this.#unclaimed, ...this.#replaced];
  }

  async #create(kind: PluginKind, scope: string, p: Planned): Promise<PluginInstance> {
    const previous = take(this.#unclaimed, (i) => i.scope === scope && i.kind === kind && i.plugin === p.plugin.name);
    if (previous) this.#replaced.push(previous);
    const lifetime = new AbortController();
    const peers = this.#ctx.peers?.(`${kind}:${scope}:${p.plugin.name}:${hash(p.identity)}`);
    let product: unknown;
    try {
      // Aborted when the product is retired, or when the whole balancer stops.
      const signal = AbortSignal.any([this.#ctx.signal, lifetime.signal]);
      product = await createProduct(p.plugin, p.options, { ...this.#ctx, signal }, { peers, previous: previous?.product });
    } catch (err) {
      lifetime.abort();
      if (peers) this.#ctx.releasePeers?.(peers);
      throw err;
    }
    const instance: PluginInstance = { identity: p.identity, scope, kind, plugin: p.plugin.name, product, lifetime, peers };
    this.created.push(instance);
    this.#ctx.log.debug({ plugin: p.plugin.name, kind, scope, replaces: previous !== undefined }, 'plugin created');
    return instance;
  }
}

/** Builds one chain on its own, with nothing to reuse (a single generation: tests, `tether validate`). */
export function buildChain<K extends PluginKind>(kind: K, entries: readonly ChainEntry[], ctx: LoaderContext): Promise<Named<Products[K]>[]> {
  return new ChainBuilder(ctx).chain(kind, entries);
}

/**
 * Ends instances that are no longer used: their lifetime signal is aborted (timers, watchers),
 * `close()` is called where the product has one, and their peer channels are released. A failing
 * close is logged; the others still close.
 */
export async function retire(instances: readonly PluginInstance[], log: Logger, releasePeers?: (channel: PeerChannel) => void): Promise<void> {
  for (const instance of instances) {
    instance.lifetime.abort();
    try {
      await (instance.product as { close?: () => unknown }).close?.();
    } catch (err) {
      log.warn({ plugin: instance.plugin, hook: 'close', err: describe(err) }, 'plugin close failed');
    }
    if (instance.peers) releasePeers?.(instance.peers);
  }
}

/**
 * Calls `reload()` on the products a configuration reload kept, so that what they read from disk
 * (certificates) is read again. A failure is the plugin's to report; it is logged and the reload
 * goes on.
 */
export async function reloadKept(instances: readonly PluginInstance[], log: Logger): Promise<void> {
  for (const instance of instances) {
    try {
      await (instance.product as { reload?: () => unknown }).reload?.();
    } catch (err) {
      log.warn({ plugin: instance.plugin, hook: 'reload', err: describe(err) }, 'plugin reload failed');
    }
  }
}

function take<T>(list: T[], match: (item: T) => boolean): T | undefined {
  const index = list.findIndex(match);
  return index < 0 ? undefined : list.splice(index, 1)[0];
}

/** JSON with object keys sorted, so equal options give equal text whatever their order in the file. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** A short, stable tag of a text (FNV-1a), so peer channel names stay readable. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
