import type { Backend, ConnInfo } from '@tether/core';
import type { Balancer } from './balancer.ts';
import type { SimClock } from './sim-clock.ts';
import { connFactory } from './conn-factory.ts';
import { balanceOf, emptyCounts, type WindowCounts } from './metrics.ts';
import type { Scenario } from './scenario.ts';
import type { Action, Timeline } from './timeline.ts';
import type { Workload } from './workload.ts';

export interface SimulationInput {
  readonly scenario: Scenario;
  readonly timeline: Timeline;
  readonly workload: Workload;
  readonly balancer: Balancer;
  readonly clock: SimClock;
  /** Called after each step (the CLI's progress line). */
  readonly onStep?: (step: number) => void;
}

export interface SimulationResult {
  /** One per timeline window, in order. */
  readonly windows: WindowCounts[];
  /** Per step: most loaded ready backend / mean load. */
  readonly maxMean: Float64Array;
  /** Per step: coefficient of variation of the ready backends' loads. */
  readonly cv: Float64Array;
  /** Live connections per backend at the end. */
  readonly connections: Record<string, number>;
  /** Persistent sessions held per backend at the end (connected or not, expired or not). */
  readonly sessions: Record<string, number>;
  /** Connections made, first ones included. */
  readonly connects: number;
}

/**
 * Plays the scenario against one balancer, one step of simulated time at a time:
 *
 * 1. backend state changes due now (a backend that goes down or is removed drops its
 *    connections; those clients reconnect at the next step, as MQTT clients do within seconds);
 * 2. at step 0, every client connects;
 * 3. clients whose offline time is over reconnect: the strategy chain chooses among the
 *    available backends, then the pool and the chain learn of the connection (`onSpliced`);
 * 4. the workload's drops of this step disconnect clients (`onClosed`) for their drawn delay;
 * 5. the balance of the ready backends is sampled.
 *
 * A persistent client's session lives on the backend it last connected to and expires
 * `sessionExpiry` after it disconnected; a reconnect keeps its session when it lands there.
 */
export async function simulate(input: SimulationInput): Promise<SimulationResult> {
  const { scenario, timeline, workload, balancer, clock } = input;
  const { pool, chain } = balancer;
  const n = workload.ids.length;
  const steps = scenario.steps;
  const backends = pool.all();
  const indexOf = new Map<Backend, number>(backends.map((b, i) => [b, i]));
  const byName = new Map(backends.map((b, i) => [b.id, i]));
  const newConn = connFactory(balancer, workload);

  /** The live connection of each client, for onClosed. */
  const live: (ConnInfo | undefined)[] = new Array<ConnInfo | undefined>(n);
  /** Backend index of each client's live connection; -1 while offline. */
  const liveOn = new Int32Array(n).fill(-1);
  /** Backend index holding each persistent client's session; -1 for none. */
  const sessionOn = new Int32Array(n).fill(-1);
  const offlineSince = new Float64Array(n);
  /** 1 once a client has connected: its later connections are reconnects. */
  const connectedBefore = new Uint8Array(n);
  /** Clients to reconnect at each step. An offline client always has its reconnect here (or after the end). */
  const due: number[][] = Array.from({ length: steps }, () => []);

  const windows = timeline.windows.map(() => emptyCounts());
  const windowOfStep = new Uint32Array(steps);
  timeline.windows.forEach((w, i) => windowOfStep.fill(i, w.fromStep, w.toStep));
  const maxMean = new Float64Array(steps);
  const cv = new Float64Array(steps);
  let connects = 0;
  let counts = windows[0]!;
  let step = 0;

  const schedule = (client: number, at: number): void => {
    if (at < steps) due[at]!.push(client);
  };

  const disconnect = (client: number): void => {
    const backend = backends[liveOn[client]!]!;
    const conn = live[client]!;
    pool.connectionClosed(backend);
    chain.closed(conn, backend);
    live[client] = undefined;
    liveOn[client] = -1;
    offlineSince[client] = clock.now();
  };

  const dropAllOn = (backend: number): void => {
    for (let c = 0; c < n; c++) {
      if (liveOn[c] !== backend) continue;
      disconnect(c);
      schedule(c, step + 1);
    }
  };

  const apply = (action: Action): void => {
    const name = action.backend;
    switch (action.kind) {
      case 'add':
      case 'ready':
        pool.setAdminState(name, 'ready');
        break;
      case 'drain':
        // Draining keeps live connections: only their next reconnect must go elsewhere.
        pool.setAdminState(name, 'drain');
        break;
      case 'remove':
        pool.setAdminState(name, 'maint');
        dropAllOn(byName.get(name)!);
        break;
      case 'down':
        pool.setHealthy(name, false);
        dropAllOn(byName.get(name)!);
        break;
      case 'up':
        pool.setHealthy(name, true);
        break;
    }
  };

  const place = async (client: number): Promise<void> => {
    const available = pool.available();
    const conn = newConn(client);
    const choice = await chain.select(conn, available);
    if (!choice) {
      counts.refused++;
      schedule(client, step + 1);
      return;
    }
    const backend = choice.backend;
    const at = indexOf.get(backend)!;
    pool.connectionOpened(backend);
    chain.spliced(conn, backend);
    live[client] = conn;
    liveOn[client] = at;
    connects++;
    const first = connectedBefore[client] === 0;
    connectedBefore[client] = 1;
    if (!first) counts.reconnects++;
    if (!workload.persistent[client]) return;
    // The session now lives here, whatever happened to the old one.
    const held = sessionOn[client]!;
    sessionOn[client] = at;
    if (first || held < 0) return;
    if (clock.now() - offlineSince[client]! >= scenario.sessionExpiryMs) {
      counts.expired++;
      return;
    }
    counts.sessionReconnects++;
    if (held === at) counts.kept++;
    else {
      counts.moved++;
      if (!available.includes(backends[held]!)) counts.forced++;
    }
  };

  let nextAction = 0;
  const actions = timeline.actions;
  for (step = 0; step < steps; step++) {
    clock.setStep(step);
    counts = windows[windowOfStep[step]!]!;
    while (nextAction < actions.length && actions[nextAction]!.step === step) apply(actions[nextAction++]!);

    if (step === 0) for (let c = 0; c < n; c++) await place(c);

    // Placing may schedule a retry at step + 1, never at this step, so this list is final.
    for (const client of due[step]!) await place(client);
    due[step] = [];

    for (let k = workload.dropStart[step]!; k < workload.dropStart[step + 1]!; k++) {
      const client = workload.dropClient[k]!;
      // Drawn while offline (a hot key drawn twice, or already dropped by an event): no-op.
      if (liveOn[client]! < 0) continue;
      disconnect(client);
      schedule(client, step + workload.dropDelay[k]!);
    }

    const sample = balanceOf(pool.available());
    maxMean[step] = sample.maxMean;
    cv[step] = sample.cv;
    input.onStep?.(step);
  }

  const connections: Record<string, number> = {};
  const sessions: Record<string, number> = {};
  for (const b of backends) {
    connections[b.id] = b.activeConnections;
    sessions[b.id] = 0;
  }
  for (let c = 0; c < n; c++) {
    const at = sessionOn[c]!;
    if (at >= 0) sessions[backends[at]!.id] = (sessions[backends[at]!.id] ?? 0) + 1;
  }
  return { windows, maxMean, cv, connections, sessions, connects };
}
