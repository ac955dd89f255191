import type { Backends } from './backends.ts';
import type { LoadGenerator } from './loadgen-process.ts';
import type { Measured } from './loadgen/protocol.ts';
import type { Scenario } from './metrics.ts';
import type { ResolvedOptions } from './options.ts';
import type { RunningTarget } from './targets.ts';

/** CPU busy fractions (1 = one core) during a scenario's measured part. */
export interface Busy {
  readonly balancer: number | null;
  /** Share of the balancer's CPU time spent in user space rather than in the kernel. */
  readonly balancerUser: number | null;
  readonly backends: number | null;
  readonly loadgen: number;
}

/** One scenario against one target in one round. */
export interface ScenarioResult {
  readonly metrics: Record<string, number | null>;
  readonly errors: number;
  readonly firstError?: string;
  readonly busy: Busy;
}

interface Context {
  readonly lg: LoadGenerator;
  readonly target: RunningTarget;
  readonly backends: Backends;
  readonly options: ResolvedOptions;
  /** Unique per round and target, so no client id (and no session or stick entry) carries over. */
  readonly idPrefix: string;
}

/** Time for a count-based phase: generous (a slow balancer must finish), but bounded. */
const countLimit = (count: number): number => 30_000 + count * 10;
const durationLimit = (ms: number): number => ms + 30_000;

/** Runs one scenario through the load generator and turns its readings into metrics. */
export async function runScenario(scenario: Scenario, ctx: Context): Promise<ScenarioResult> {
  const { lg, target, options, idPrefix } = ctx;
  const watch = watched(ctx);
  const common = { endpoints: target.endpoints, watch, idPrefix };
  const ws = { ...common, endpoints: target.wsEndpoints ?? [] };
  if (scenario.startsWith('ws-') && ws.endpoints.length === 0) return noWebSocket();
  // The pass-through target's backends are WebSocket endpoints: plain MQTT clients have none.
  if (!scenario.startsWith('ws-') && passesThrough(target)) return noWebSocket();
  switch (scenario) {
    case 'ws-connect': {
      const r = await lg.run({ kind: 'connect', ...ws, idPrefix: `${idPrefix}wc`, count: options.connections, concurrency: options.concurrency, clean: true, subscribe: false, limitMs: countLimit(options.connections) });
      return result(ctx, [r], { rate: rate(r), p50Ms: r.latencyMs.p50, p99Ms: r.latencyMs.p99, cpuUs: perOp(r, ctx) });
    }
    case 'ws-pingpong': {
      const r = await lg.run({ kind: 'pingpong', ...ws, idPrefix: `${idPrefix}wg`, clients: options.concurrency, durationMs: options.durationMs, limitMs: durationLimit(options.durationMs) });
      return result(ctx, [r], { rate: rate(r), p50Us: r.latencyUs.p50, p99Us: r.latencyUs.p99, cpuUs: perOp(r, ctx) });
    }
    case 'connect': {
      const r = await lg.run({ kind: 'connect', ...common, idPrefix: `${idPrefix}c`, count: options.connections, concurrency: options.concurrency, clean: true, subscribe: false, limitMs: countLimit(options.connections) });
      return result(ctx, [r], { rate: rate(r), p50Ms: r.latencyMs.p50, p99Ms: r.latencyMs.p99, cpuUs: perOp(r, ctx) });
    }
    case 'reconnect': {
      // Warm-up, not measured: every persistent client connects once and subscribes (aedes
      // reports a session only if it holds subscriptions). Then each reconnects exactly once: its
      // session exists on exactly one backend, so session present = routed to the same one.
      const base = { kind: 'connect' as const, ...common, idPrefix: `${idPrefix}p`, count: options.connections, concurrency: options.concurrency, clean: false, limitMs: countLimit(options.connections) };
      const warm = await lg.run({ ...base, subscribe: true });
      const r = await lg.run({ ...base, subscribe: false });
      const measured = result(ctx, [r], { rate: rate(r), p50Ms: r.latencyMs.p50, p99Ms: r.latencyMs.p99, stickiness: r.ok > 0 ? r.sessionPresent / r.ok : null, cpuUs: perOp(r, ctx) });
      return withErrors(measured, warm);
    }
    case 'idle': {
      const r = await lg.run({ kind: 'hold', ...common, idPrefix: `${idPrefix}i`, count: options.idleConnections, concurrency: options.concurrency, limitMs: countLimit(options.idleConnections) });
      const released = await lg.run({ kind: 'release', limitMs: countLimit(options.idleConnections) });
      const at = watch.indexOf(target.pid ?? -1);
      const before = at >= 0 ? r.rssBeforeKiB[at] : null;
      const after = at >= 0 ? r.rssAfterKiB[at] : null;
      const rssKiB = before != null && after != null && r.ok > 0 ? (after - before) / r.ok : null;
      const measured = result(ctx, [r], { held: r.ok - released.dropped, rssKiB, cpuUs: perOp(r, ctx) });
      return released.dropped > 0 ? { ...measured, errors: measured.errors + released.dropped, firstError: measured.firstError ?? `${released.dropped} held connections were closed by the other side` } : measured;
    }
    case 'pingpong': {
      const r = await lg.run({ kind: 'pingpong', ...common, idPrefix: `${idPrefix}g`, clients: options.concurrency, durationMs: options.durationMs, limitMs: durationLimit(options.durationMs) });
      return result(ctx, [r], { rate: rate(r), p50Us: r.latencyUs.p50, p99Us: r.latencyUs.p99, p999Us: r.latencyUs.p999, cpuUs: perOp(r, ctx) });
    }
    case 'publish': {
      const base = { kind: 'publish' as const, ...common, clients: options.concurrency, durationMs: options.durationMs, window: options.qos1Window, payloadBytes: options.payloadBytes, limitMs: durationLimit(options.durationMs) };
      const q0 = await lg.run({ ...base, idPrefix: `${idPrefix}0`, qos: 0 });
      const q1 = await lg.run({ ...base, idPrefix: `${idPrefix}1`, qos: 1 });
      return result(ctx, [q0, q1], { qos0Rate: rate(q0), qos0CpuUs: perOp(q0, ctx), qos1Rate: rate(q1), qos1CpuUs: perOp(q1, ctx) });
    }
  }
}

/**
 * Unmeasured traffic right after a target starts: a Node balancer runs its first few hundred
 * connections through the interpreter before V8 optimizes its hot paths, and a measurement of
 * that would say more about start-up than about the steady state (HAProxy has no such phase).
 */
export async function warmUp(ctx: Context): Promise<void> {
  const { lg, target, options, idPrefix } = ctx;
  const common = { endpoints: target.endpoints, watch: [], idPrefix: `${idPrefix}w` };
  const count = Math.min(options.connections, WARM_UP_CONNECTIONS);
  const durationMs = Math.min(options.durationMs, WARM_UP_MS);
  if (passesThrough(target)) {
    await lg.run({ kind: 'connect', ...common, endpoints: target.wsEndpoints ?? [], count, concurrency: options.concurrency, clean: true, subscribe: false, limitMs: countLimit(count) });
    return;
  }
  await lg.run({ kind: 'connect', ...common, count, concurrency: options.concurrency, clean: true, subscribe: false, limitMs: countLimit(count) });
  // Only the paths the selected scenarios take: a QoS 0 flood warms nothing a storm uses.
  if (options.scenarios.includes('pingpong')) await lg.run({ kind: 'pingpong', ...common, clients: options.concurrency, durationMs, limitMs: durationLimit(durationMs) });
  const wsEndpoints = target.wsEndpoints ?? [];
  if (wsEndpoints.length > 0 && options.scenarios.some((s) => s.startsWith('ws-'))) {
    await lg.run({ kind: 'connect', ...common, endpoints: wsEndpoints, count, concurrency: options.concurrency, clean: true, subscribe: false, limitMs: countLimit(count) });
    if (options.scenarios.includes('ws-pingpong')) await lg.run({ kind: 'pingpong', ...common, endpoints: wsEndpoints, clients: options.concurrency, durationMs, limitMs: durationLimit(durationMs) });
  }
  if (options.scenarios.includes('publish')) {
    for (const qos of [0, 1] as const) {
      await lg.run({ kind: 'publish', ...common, clients: options.concurrency, durationMs, qos, window: options.qos1Window, payloadBytes: options.payloadBytes, limitMs: durationLimit(durationMs) });
    }
  }
}

const WARM_UP_CONNECTIONS = 500;
const WARM_UP_MS = 300;

function passesThrough(target: RunningTarget): boolean {
  return target.spec.kind === 'tether' && target.spec.passThrough === true;
}

/** A scenario the target cannot run (WebSocket on a baseline, plain MQTT on the pass-through target): no figures. */
function noWebSocket(): ScenarioResult {
  return { metrics: {}, errors: 0, busy: { balancer: null, balancerUser: null, backends: null, loadgen: 0 } };
}

/** The PIDs whose CPU is read: the balancer first (if any), then the backends we started. */
function watched(ctx: Context): number[] {
  return [...(ctx.target.pid !== undefined ? [ctx.target.pid] : []), ...ctx.backends.pids];
}

const rate = (r: Measured): number => (r.elapsedMs > 0 ? (r.ok * 1000) / r.elapsedMs : 0);

/** Balancer CPU µs per completed operation; null for direct (no balancer) or nothing done. */
function perOp(r: Measured, ctx: Context): number | null {
  if (ctx.target.pid === undefined || r.ok === 0) return null;
  const cpu = r.cpuMicros[0];
  return cpu == null ? null : cpu / r.ok;
}

function result(ctx: Context, readings: readonly Measured[], metrics: Record<string, number | null>): ScenarioResult {
  const hasBalancer = ctx.target.pid !== undefined;
  const busyOf = (pick: (r: Measured) => number | null): number | null => {
    const values = readings.map((r) => {
      const v = pick(r);
      return v === null || r.elapsedMs <= 0 ? null : v / (r.elapsedMs * 1000);
    });
    return values.some((v) => v === null) ? null : Math.max(...(values as number[]));
  };
  const backendsAt = hasBalancer ? 1 : 0;
  const errors = readings.reduce((n, r) => n + r.errors, 0);
  const firstError = readings.find((r) => r.firstError)?.firstError;
  return {
    metrics,
    errors,
    ...(firstError ? { firstError } : {}),
    busy: {
      balancer: hasBalancer ? busyOf((r) => r.cpuMicros[0] ?? null) : null,
      balancerUser: hasBalancer ? userShare(readings) : null,
      backends: ctx.backends.pids.length > 0 ? busyOf((r) => r.cpuMicros.slice(backendsAt).reduce<number>((s, v) => s + (v ?? 0), 0)) : null,
      loadgen: busyOf((r) => r.loadgenCpuMicros) ?? 0,
    },
  };
}

/** User time over total CPU time of the balancer, over all readings of the scenario. */
function userShare(readings: readonly Measured[]): number | null {
  let user = 0;
  let total = 0;
  for (const r of readings) {
    if (r.userCpuMicros[0] == null || r.cpuMicros[0] == null) return null;
    user += r.userCpuMicros[0];
    total += r.cpuMicros[0];
  }
  return total > 0 ? user / total : null;
}

function withErrors(measured: ScenarioResult, warmUp: Measured): ScenarioResult {
  if (warmUp.errors === 0) return measured;
  return { ...measured, errors: measured.errors + warmUp.errors, firstError: measured.firstError ?? `warm-up: ${warmUp.firstError ?? 'errors'}` };
}
