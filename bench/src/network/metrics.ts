/** The scenarios of `tether bench network`, in the order they run. */
export const SCENARIOS = ['connect', 'reconnect', 'idle', 'pingpong', 'publish', 'ws-connect', 'ws-pingpong'] as const;
export type Scenario = (typeof SCENARIOS)[number];
/**
 * What runs without --scenarios. The WebSocket ones (connect storm and ping-pong through Tether's
 * WebSocket listener, bridged to the same backends; no figure for the baselines, which have no
 * WebSocket side) are asked for by name: `--scenarios connect,pingpong,ws-connect,ws-pingpong`.
 */
export const DEFAULT_SCENARIOS: readonly Scenario[] = ['connect', 'reconnect', 'idle', 'pingpong', 'publish'];

export interface MetricDef {
  readonly scenario: Scenario;
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  /** Which way is better, for reading ratios: for "higher", a ratio above 1 is better. */
  readonly better: 'higher' | 'lower';
  /** A measurement of the balancer process itself (CPU, RSS): none for the direct baseline. */
  readonly ofBalancer?: boolean;
}

/** Every number reported per target and round; the table shows them in this order. */
export const METRICS: readonly MetricDef[] = [
  { scenario: 'connect', key: 'rate', label: 'connections/s', unit: '/s', better: 'higher' },
  { scenario: 'connect', key: 'p50Ms', label: 'connect p50', unit: 'ms', better: 'lower' },
  { scenario: 'connect', key: 'p99Ms', label: 'connect p99', unit: 'ms', better: 'lower' },
  { scenario: 'connect', key: 'cpuUs', label: 'CPU per connection', unit: 'µs', better: 'lower', ofBalancer: true },
  { scenario: 'reconnect', key: 'rate', label: 'reconnects/s', unit: '/s', better: 'higher' },
  { scenario: 'reconnect', key: 'p50Ms', label: 'reconnect p50', unit: 'ms', better: 'lower' },
  { scenario: 'reconnect', key: 'p99Ms', label: 'reconnect p99', unit: 'ms', better: 'lower' },
  { scenario: 'reconnect', key: 'stickiness', label: 'session present', unit: '', better: 'higher' },
  { scenario: 'reconnect', key: 'cpuUs', label: 'CPU per reconnect', unit: 'µs', better: 'lower', ofBalancer: true },
  { scenario: 'idle', key: 'held', label: 'connections held', unit: '', better: 'higher' },
  { scenario: 'idle', key: 'rssKiB', label: 'RSS per connection', unit: 'KiB', better: 'lower', ofBalancer: true },
  { scenario: 'idle', key: 'cpuUs', label: 'CPU per connection', unit: 'µs', better: 'lower', ofBalancer: true },
  { scenario: 'pingpong', key: 'rate', label: 'round trips/s', unit: '/s', better: 'higher' },
  { scenario: 'pingpong', key: 'p50Us', label: 'round trip p50', unit: 'µs', better: 'lower' },
  { scenario: 'pingpong', key: 'p99Us', label: 'round trip p99', unit: 'µs', better: 'lower' },
  { scenario: 'pingpong', key: 'p999Us', label: 'round trip p99.9', unit: 'µs', better: 'lower' },
  { scenario: 'pingpong', key: 'cpuUs', label: 'CPU per round trip', unit: 'µs', better: 'lower', ofBalancer: true },
  { scenario: 'publish', key: 'qos0Rate', label: 'QoS 0 messages/s', unit: '/s', better: 'higher' },
  { scenario: 'publish', key: 'qos0CpuUs', label: 'CPU per QoS 0 message', unit: 'µs', better: 'lower', ofBalancer: true },
  { scenario: 'publish', key: 'qos1Rate', label: 'QoS 1 messages/s', unit: '/s', better: 'higher' },
  { scenario: 'publish', key: 'qos1CpuUs', label: 'CPU per QoS 1 message', unit: 'µs', better: 'lower', ofBalancer: true },
  { scenario: 'ws-connect', key: 'rate', label: 'WebSocket connections/s', unit: '/s', better: 'higher' },
  { scenario: 'ws-connect', key: 'p50Ms', label: 'WebSocket connect p50', unit: 'ms', better: 'lower' },
  { scenario: 'ws-connect', key: 'p99Ms', label: 'WebSocket connect p99', unit: 'ms', better: 'lower' },
  { scenario: 'ws-connect', key: 'cpuUs', label: 'CPU per WebSocket connection', unit: 'µs', better: 'lower', ofBalancer: true },
  { scenario: 'ws-pingpong', key: 'rate', label: 'WebSocket round trips/s', unit: '/s', better: 'higher' },
  { scenario: 'ws-pingpong', key: 'p50Us', label: 'WebSocket round trip p50', unit: 'µs', better: 'lower' },
  { scenario: 'ws-pingpong', key: 'p99Us', label: 'WebSocket round trip p99', unit: 'µs', better: 'lower' },
  { scenario: 'ws-pingpong', key: 'cpuUs', label: 'CPU per WebSocket round trip', unit: 'µs', better: 'lower', ofBalancer: true },
];

export function metricsOf(scenario: Scenario): readonly MetricDef[] {
  return METRICS.filter((m) => m.scenario === scenario);
}
