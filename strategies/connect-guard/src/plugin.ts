import { ABSTAIN, defineStrategy, durationFormat, parseDuration, PLUGIN_API_VERSION, refuse, type Strategy, type TableEntry, type TableView } from '@tether/core';
import { KickLoopDetector, type LoopRow } from './kick-loop-detector.ts';
import { SourceLimiter } from './source-limiter.ts';

export interface ConnectGuardOptions {
  kickLoop: { takeovers: number; window: string | number; recent: string | number; backoff: string | number; maxBackoff: string | number };
  perSource: { rate: number; burst: number };
  size: number;
}

const wholeNumber = (min: number, what: string) => (val: unknown): void => {
  if (!Number.isInteger(val) || (val as number) < min) throw new Error(`must be a whole number${min > 0 ? ` of at least ${min}` : ''} (${what})`);
};

/**
 * Admission before the chain chooses: put it first (`select: [connect-guard, stick-table,
 * least-connections]`). It never chooses a backend; it abstains, or refuses a connection, which
 * then gets a CONNACK "server busy" and never reaches a broker.
 */
export const connectGuard = defineStrategy<ConnectGuardOptions>({
  name: 'connect-guard',
  kind: 'strategy',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Kick-loop damping and per-source connect rate limits, refused with CONNACK server busy.',
  options: {
    kickLoop: {
      takeovers: { doc: 'Connections of one key while another of it is live (or closed less than `recent` ago) within `window` that make a kick loop; 0 turns detection off.', format: wholeNumber(0, 'takeovers; 0: off'), default: 5 },
      window: { doc: 'Window over which takeovers are counted; also how long a key stays on probation after a back-off.', format: durationFormat({ min: 1 }), default: '10s' },
      recent: { doc: 'A connection of a key closed less than this ago still counts as connected (the broker may not have noticed yet).', format: durationFormat(), default: '500ms' },
      backoff: { doc: 'First back-off: how long new connections of a looping key are refused.', format: durationFormat({ min: 1 }), default: '2s' },
      maxBackoff: { doc: 'Longest back-off: each takeover on probation doubles it, up to this.', format: durationFormat({ min: 1 }), default: '5m' },
    },
    perSource: {
      rate: {
        doc: 'Connects per second allowed from one source address, a token bucket (fractions allowed: 0.5 is one every 2 s); 0 turns the limit off.',
        format: (val: unknown) => {
          if (typeof val !== 'number' || !Number.isFinite(val) || val < 0) throw new Error('must be a number of connects per second, 0 or more (0: off)');
        },
        default: 0,
      },
      burst: { doc: 'Connects one source address may make at once before `rate` applies.', format: wholeNumber(1, 'connects'), default: 20 },
    },
    size: { doc: 'Most keys and most source addresses followed at once (each); past it new ones are let through unfollowed.', format: wholeNumber(1, 'entries'), default: 100_000 },
  },
  create(ctx, options) {
    const ms = (v: string | number): number => parseDuration(v)!;
    const k = options.kickLoop;
    const loops = new KickLoopDetector({ takeovers: k.takeovers, windowMs: ms(k.window), recentMs: ms(k.recent), backoffMs: ms(k.backoff), maxBackoffMs: Math.max(ms(k.maxBackoff), ms(k.backoff)), size: options.size }, ctx.now);
    const sources = new SourceLimiter({ rate: options.perSource.rate, burst: options.perSource.burst, size: options.size }, ctx.now);
    for (const counter of ['kick_loops', 'kick_loop_refusals', 'rate_limited']) ctx.stats.inc(counter, 0);
    const timer = setInterval(() => {
      loops.sweep();
      sources.sweep();
    }, Math.min(Math.max(ms(k.window) / 2, 1000), 30_000));
    timer.unref();
    ctx.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
    // Connection attributes: let through once (the chain asks again on each retry), and counted
    // live under its key (so that only a counted connection is released).
    const n = ++instances;
    const ADMITTED = `connect-guard:admitted:${n}`;
    const OPENED = `connect-guard:opened:${n}`;

    const product: Strategy = {
      select(conn) {
        // `tether explain` and retries of a connection already let through change nothing.
        if (conn.dryRun || conn.attributes.has(ADMITTED)) return ABSTAIN;
        if (sources.enabled && !sources.take(conn.remoteAddress)) {
          ctx.stats.inc('rate_limited');
          return refuse('rate_limited', `source ${conn.remoteAddress} is over ${options.perSource.rate} connects per second (burst ${options.perSource.burst})`);
        }
        const verdict = conn.key ? loops.admit(conn.key, conn.remoteAddress) : undefined;
        if (!verdict || verdict.kind === 'admit') {
          conn.attributes.set(ADMITTED, true);
          return ABSTAIN;
        }
        ctx.stats.inc('kick_loop_refusals');
        if (verdict.started) {
          ctx.stats.inc('kick_loops');
          // One line when a loop is found; its refusals are counted, not logged one by one.
          ctx.log.warn({ key: conn.key!.slice(0, 256), sources: verdict.state.sources, takeovers: k.takeovers, window: k.window, backoffMs: verdict.retryInMs }, 'kick loop: connections with one key keep taking each other\'s session; its new connections get CONNACK server busy for a growing back-off');
        }
        return refuse('kick_loop', `key in a kick loop (${verdict.state.count} takeovers), refused for ${Math.ceil(verdict.retryInMs / 1000)} s more`);
      },
      onSpliced(conn) {
        if (!conn.key) return;
        if (loops.opened(conn.key)) conn.attributes.set(OPENED, true);
      },
      onClosed(conn) {
        if (conn.key && conn.attributes.get(OPENED)) loops.closed(conn.key);
      },
      table: (limit, query) => view(loops.loops(), options.size, limit, query?.key),
      deleteEntry: (key) => loops.forgive(key),
      clearEntries: (backendId) => (backendId === undefined ? loops.forgiveAll() : 0),
    };
    return product;
  },
});

let instances = 0;

/** The keys in a loop, as a table: `use` is live connections, `hits` takeovers, `exp` the refusal left. */
function view(rows: readonly LoopRow[], size: number, limit: number | undefined, key: string | undefined): TableView {
  const chosen = key === undefined ? rows : rows.filter((r) => r.key === key);
  const entries: TableEntry[] = chosen.slice(0, limit ?? chosen.length).map((r) => ({
    key: r.key,
    backend: '-',
    use: r.live,
    hits: r.takeovers,
    expiresInMs: r.refusingForMs,
    lastSeen: r.lastTakeover,
    flags: r.refusingForMs > 0 ? ['kick-loop', 'refusing'] : ['kick-loop'],
  }));
  return { name: 'connect-guard', type: 'string', size, used: rows.length, entries, store: 'memory' };
}
