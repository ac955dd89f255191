import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { BackendPool } from '../backend/backend-pool.ts';
import type { BackendMeter } from '../metrics/backend-meter.ts';
import { connackReason } from '../mqtt/connack-codes.ts';
import type { ConnackWatch } from '../mqtt/connack-reader.ts';
import type { Backend, ConnInfo } from '../plugin.ts';
import type { Stats } from '../stats.ts';
import type { SpliceObserver, SpliceResult } from './splice.ts';
import { stickiness } from './stickiness.ts';
import type { StrategyChain } from './strategy-chain.ts';

/** What every spliced connection shares: the balancer's pool, chain, counters and root logger. */
export interface SplicedDeps {
  readonly pool: BackendPool;
  readonly strategies: StrategyChain;
  readonly stats: Stats;
  readonly log: Logger;
}

/** What one connection was given when it was spliced. */
export interface SplicedFacts {
  readonly conn: ConnInfo;
  readonly backend: Backend;
  readonly strategy: string;
  /** The backend is where the client's key was seen before (a stick-table hit). */
  readonly remembered: boolean;
  readonly sniffMs: number;
  readonly meter: BackendMeter | undefined;
}

const NOT_READ = -1;

/**
 * A spliced connection as the pipeline follows it until it closes: it hears the broker's CONNACK
 * (a stickiness miss, a refusal) and the close (counters, the strategies' `onClosed`, the one
 * `connection closed` line). One object per connection instead of closures, holding only what
 * the close needs: not the sniffed bytes, not the pipeline's stages.
 */
export class SplicedConnection implements SpliceObserver {
  readonly #deps: SplicedDeps;
  // The facts, copied: one object per connection rather than two.
  readonly #conn: ConnInfo;
  readonly #backend: Backend;
  readonly #strategy: string;
  readonly #remembered: boolean;
  readonly #sniffMs: number;
  readonly #meter: BackendMeter | undefined;
  readonly #client: Socket;
  readonly #log: () => Logger;
  #untrack: (() => void) | undefined;
  #closed = false;
  #code = NOT_READ;
  #sessionPresent = false;
  /** Why no CONNACK was read, when the broker's first packet was something else. */
  #connackError: string | undefined;

  constructor(deps: SplicedDeps, facts: SplicedFacts, client: Socket, log: () => Logger) {
    this.#deps = deps;
    this.#conn = facts.conn;
    this.#backend = facts.backend;
    this.#strategy = facts.strategy;
    this.#remembered = facts.remembered;
    this.#sniffMs = facts.sniffMs;
    this.#meter = facts.meter;
    this.#client = client;
    this.#log = log;
  }

  /** How to stop the pool from closing this connection (BackendPool.track), once it is closed. */
  tracked(untrack: () => void): void {
    if (this.#closed) untrack();
    else this.#untrack = untrack;
  }

  connack(reader: ConnackWatch): void {
    const conn = this.#conn;
    const meter = this.#meter;
    const { stats } = this.#deps;
    if (reader.verdict !== 'connack') {
      this.#connackError = reader.error;
      stats.inc('connack_invalid');
      if (meter) meter.invalidConnacks++;
      return;
    }
    this.#code = reader.code;
    this.#sessionPresent = reader.sessionPresent;
    if (reader.code !== 0) {
      stats.inc('connack_refused');
      meter?.refusedWith(reader.code);
      return;
    }
    const verdict = stickiness(conn, this.#remembered, reader.code, reader.sessionPresent);
    if (verdict === 'unchecked') return;
    stats.inc('stickiness_checks');
    if (meter) meter.stickinessChecks++;
    if (verdict === 'hit') return;
    stats.inc('stickiness_misses');
    if (meter) meter.stickinessMisses++;
    this.#log().info(
      { backend: this.#backend.id, strategy: this.#strategy, key: conn.key?.slice(0, 128), mqtt: { clientId: conn.connect.clientId.slice(0, 128) } },
      'stickiness miss: the remembered backend accepted a client that resumes its session, without the session (session present 0)',
    );
  }

  closed(result: SpliceResult): void {
    this.#closed = true;
    this.#untrack?.();
    const { pool, strategies, stats, log } = this.#deps;
    const conn = this.#conn;
    const backend = this.#backend;
    pool.connectionClosed(backend);
    strategies.closed(conn, backend);
    stats.inc('connections_active', -1);
    this.#meter?.closed(this.#client, result.bytesIn, result.bytesOut);
    if (!log.isLevelEnabled('info')) return;
    this.#log().info({
      remote: `${conn.remoteAddress}:${conn.remotePort}`, listener: conn.listener, backend: backend.id, strategy: this.#strategy, key: conn.key?.slice(0, 128),
      mqtt: { clientId: conn.connect.clientId.slice(0, 128) }, connack: this.#connackFields(conn.protocolVersion), sniffMs: this.#sniffMs, ...result,
    }, 'connection closed');
  }

  /** The CONNACK as the close line shows it. */
  #connackFields(protocolVersion: 3 | 4 | 5): Record<string, unknown> {
    if (this.#code !== NOT_READ) return { code: this.#code, reason: connackReason(this.#code, protocolVersion), sessionPresent: this.#sessionPresent };
    return { error: this.#connackError ?? 'the connection closed before the broker sent a CONNACK' };
  }
}
