import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisStoreSettings } from '../store-options.ts';
import { CLAIM_SCRIPT, DELETE_IF_SCRIPT, MOVE_SCRIPT } from './scripts.ts';

/**
 * The Redis clients of one stick table: the only module that imports the client library (ioredis,
 * see docs/scale-out.md for why), and it is itself loaded only when `store.type` is `redis`, so a
 * balancer on the memory store never loads it.
 *
 * Two connections: `commands`, which fails fast (no offline queue: a command sent while Redis is
 * away fails at once instead of waiting in memory for a reconnect, so a connection is never held
 * by Redis's absence), and `subscriber`, which listens to the invalidation channel and
 * resubscribes by itself after a reconnect. Standalone, Sentinel and Cluster give the same
 * command interface; only the constructor differs.
 */

export type RedisClient = Redis | Cluster;

/** The Lua commands defined on the command client (scripts.ts), called through EVALSHA. */
export interface ScriptCommands {
  tetherClaim(key: string, backend: string, ttlMs: number): Promise<string | null>;
  tetherMove(key: string, from: string, to: string, ttlMs: number): Promise<string | null>;
  tetherDeleteIf(key: string, backend: string): Promise<number>;
}

export type CommandClient = RedisClient & ScriptCommands;

export interface RedisClients {
  readonly commands: CommandClient;
  readonly subscriber: RedisClient;
  /** The servers to SCAN for a table view: the one server, or every Cluster master (in address order). */
  scanTargets(): Redis[];
  /** Ends both connections and their reconnect timers; never hangs. */
  close(): Promise<void>;
}

/** Commands on a connection's path (the claim is a SET, the lookup a GET): never auto-pipelined. */
const DIRECT_COMMANDS = ['set', 'get'] as const;

/** Reconnect backoff: 50 ms doubling up to this, with jitter so that instances do not retry in step. */
export const RECONNECT_CAP_MS = 2_000;
const RECONNECT_BASE_MS = 50;
/** How long a TCP (and TLS) connect to Redis may take before it is retried. */
const CONNECT_TIMEOUT_MS = 2_000;

/** Capped exponential backoff with jitter (50 %–100 % of the step): attempt 1 → 25–50 ms, … → 1–2 s. */
export function reconnectDelay(attempt: number, random: () => number = Math.random): number {
  const step = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** Math.max(0, Math.min(attempt - 1, 16)));
  return Math.round(step * (0.5 + random() / 2));
}

export function createClients(s: RedisStoreSettings, backgroundTimeoutMs: number): RedisClients {
  const tls = tlsOptions(s);
  const common: RedisOptions = {
    ...(s.username !== undefined ? { username: s.username } : {}),
    ...(s.password !== undefined ? { password: s.password } : {}),
    ...(tls ? { tls } : {}),
    connectTimeout: CONNECT_TIMEOUT_MS,
    // A deadline for every command the client sends, also those not on a connection's path (the
    // connection path has its own, shorter one): a Redis that accepts and then stalls releases them.
    commandTimeout: backgroundTimeoutMs,
    connectionName: 'tether',
    lazyConnect: true,
    // Background batches (touches) go out in one write. The claims and lookups of connections
    // are written at once instead: auto-pipelining a lone command costs a deferral and a pipeline
    // object, measured at about 150 µs of CPU per new key under a connect storm, more than the
    // write it would save.
    enableAutoPipelining: true,
    autoPipeliningIgnoredCommands: [...DIRECT_COMMANDS],
    // A command in flight when the connection drops fails at once rather than after a reconnect.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // A master demoted to replica (a Sentinel failover while this connection stayed up) answers
    // every write with READONLY: reconnect, which asks the sentinels for the new master.
    reconnectOnError: (err) => (/^READONLY/.test(err.message) ? 1 : false),
  };
  let commands: RedisClient;
  let subscriber: RedisClient;
  if (s.nodes) {
    const options: ClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      autoPipeliningIgnoredCommands: [...DIRECT_COMMANDS],
      lazyConnect: true,
      clusterRetryStrategy: (times) => reconnectDelay(times),
      redisOptions: { ...common, db: 0 },
    };
    commands = new Cluster(s.nodes.map((n) => ({ host: n.host, port: n.port })), options);
    subscriber = commands.duplicate(undefined, { ...options, enableOfflineQueue: true });
  } else {
    const where: RedisOptions = s.sentinels
      ? {
          sentinels: s.sentinels.map((n) => ({ host: n.host, port: n.port })),
          name: s.name!,
          sentinelRetryStrategy: (times: number) => reconnectDelay(times),
          ...(tls ? { enableTLSForSentinelMode: true } : {}),
        }
      : { host: s.server!.host, port: s.server!.port };
    const options: RedisOptions = { ...common, ...where, db: s.db, enableOfflineQueue: false, retryStrategy: (times) => reconnectDelay(times) };
    commands = new Redis(options);
    // The subscriber is not on any connection's path: its SUBSCRIBE may wait for the connection.
    subscriber = new Redis({ ...options, enableOfflineQueue: true, autoResubscribe: true, enableAutoPipelining: false });
  }
  commands.defineCommand('tetherClaim', { numberOfKeys: 1, lua: CLAIM_SCRIPT });
  commands.defineCommand('tetherMove', { numberOfKeys: 1, lua: MOVE_SCRIPT });
  commands.defineCommand('tetherDeleteIf', { numberOfKeys: 1, lua: DELETE_IF_SCRIPT });
  return {
    commands: commands as CommandClient,
    subscriber,
    scanTargets: () => (commands instanceof Cluster
      ? commands.nodes('master').sort((a, b) => nodeName(a).localeCompare(nodeName(b)))
      : [commands as Redis]),
    close: async () => {
      // disconnect() ends the socket and stops reconnecting now; QUIT would wait for a Redis
      // that may be away.
      commands.disconnect();
      subscriber.disconnect();
    },
  };
}

function nodeName(r: Redis): string {
  return `${r.options.host ?? ''}:${r.options.port ?? 0}`;
}

/** Node TLS options from the store's settings: the files are read now, once. */
function tlsOptions(s: RedisStoreSettings): ConnectionOptions | undefined {
  if (!s.tls) return undefined;
  const t = s.tls;
  return {
    ...(t.ca ? { ca: readFileSync(t.ca) } : {}),
    ...(t.cert ? { cert: readFileSync(t.cert), key: readFileSync(t.key!) } : {}),
    ...(t.servername ? { servername: t.servername } : {}),
    rejectUnauthorized: t.rejectUnauthorized,
  };
}
