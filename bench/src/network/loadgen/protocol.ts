import type { LatencySummary } from '../stats.ts';

/**
 * The messages between the benchmark and its load generator process (over the IPC channel). Each
 * command is one measured phase; the generator brackets exactly the measured part of it with
 * CPU readings of the processes in `watch` (balancer, backends), so connection set-up and
 * tear-down that are not part of what is measured do not count.
 */

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** MQTT over WebSocket on this path (ws://host:port/path) instead of plain MQTT. */
  readonly websocket?: string;
}

interface Common {
  /** Client number i connects to endpoints[i % endpoints.length] (the direct baseline spreads clients this way). */
  readonly endpoints: readonly Endpoint[];
  /** PIDs whose CPU time (and for `hold`, RSS) is read at the start and end of the measured part. */
  readonly watch: readonly number[];
  /** Hard limit for the whole command: whatever is still open then is destroyed and counted as an error. */
  readonly limitMs: number;
  /** Client ids are this prefix and a six-digit client number; keep it short (HAProxy keys are 32 bytes). */
  readonly idPrefix: string;
}

/** One TCP connect + CONNECT + CONNACK (+ SUBSCRIBE + SUBACK) + DISCONNECT per client, `concurrency` at a time. */
export interface ConnectCommand extends Common {
  readonly kind: 'connect';
  readonly count: number;
  readonly concurrency: number;
  readonly clean: boolean;
  /** Subscribe before disconnecting: a broker such as aedes reports a session only if it has subscriptions. */
  readonly subscribe: boolean;
}

/** Opens `count` connections and keeps them until `release`. */
export interface HoldCommand extends Common {
  readonly kind: 'hold';
  readonly count: number;
  readonly concurrency: number;
}

export interface ReleaseCommand {
  readonly kind: 'release';
  readonly limitMs: number;
}

/** `clients` connections, each sending PINGREQ and waiting for PINGRESP in a loop, for `durationMs`. */
export interface PingPongCommand extends Common {
  readonly kind: 'pingpong';
  readonly clients: number;
  readonly durationMs: number;
}

/** `clients` connections publishing as fast as the path takes it, for `durationMs`. */
export interface PublishCommand extends Common {
  readonly kind: 'publish';
  readonly clients: number;
  readonly durationMs: number;
  readonly qos: 0 | 1;
  /** QoS 1 messages in flight per connection. */
  readonly window: number;
  readonly payloadBytes: number;
}

export type Command = ConnectCommand | HoldCommand | ReleaseCommand | PingPongCommand | PublishCommand;

/** What every measured command reports. */
export interface Measured {
  /** Operations (connections, round trips, messages) completed in the measured part. */
  readonly ok: number;
  readonly errors: number;
  readonly firstError?: string;
  readonly elapsedMs: number;
  /** CPU time used by each watched PID during the measured part, in µs (null: not readable). */
  readonly cpuMicros: readonly (number | null)[];
  /** The part of cpuMicros spent in user space (the rest is kernel time). */
  readonly userCpuMicros: readonly (number | null)[];
  /** CPU time the load generator itself used, in µs: near elapsed time means it may be the bottleneck. */
  readonly loadgenCpuMicros: number;
}

export interface ConnectResult extends Measured {
  /** From starting the TCP connect to receiving CONNACK, in ms. */
  readonly latencyMs: LatencySummary;
  /** CONNACKs with the session-present flag set. */
  readonly sessionPresent: number;
}

export interface HoldResult extends Measured {
  /** RSS of each watched PID before opening and with all connections open, in KiB. */
  readonly rssBeforeKiB: readonly (number | null)[];
  readonly rssAfterKiB: readonly (number | null)[];
}

export interface PingPongResult extends Measured {
  /** PINGREQ to PINGRESP, in µs. */
  readonly latencyUs: LatencySummary;
}

export type PublishResult = Measured;

export interface ReleaseResult {
  readonly closed: number;
  /** Connections that had closed on their own during the hold (the balancer dropped them). */
  readonly dropped: number;
}

export type Reply = { readonly id: number; readonly ok: true; readonly result: unknown } | { readonly id: number; readonly ok: false; readonly error: string };
export type Request = { readonly id: number; readonly command: Command };
