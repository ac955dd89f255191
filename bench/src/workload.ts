import { Prng } from './prng.ts';
import type { Scenario } from './scenario.ts';
import { UniformSampler, ZipfSampler, type KeySampler } from './zipf.ts';

/**
 * Everything random about the clients, drawn once from the seed before any strategy runs: who
 * they are, which ones keep a persistent session, and the churn schedule (at each step, whose
 * connection drops and for how long it stays offline). Every chain is driven by this same
 * workload, so differences in the results come from the strategies alone.
 */
export interface Workload {
  /** Client identifiers (the CONNECT client id). */
  readonly ids: readonly string[];
  /** User names (`tenant:client-id`) when the scenario names tenants. */
  readonly usernames: readonly string[] | undefined;
  /** 1 for a client with a persistent session (clean session off), 0 for a clean one. */
  readonly persistent: Uint8Array;
  /** The drops of step s are entries dropStart[s] .. dropStart[s + 1] - 1 of the two arrays below. */
  readonly dropStart: Uint32Array;
  readonly dropClient: Uint32Array;
  /** Steps the dropped client stays offline (at least 1). */
  readonly dropDelay: Uint32Array;
  /** The same key distribution, for drawing the selection-cost sample. */
  readonly sampler: KeySampler;
}

export function clientId(i: number): string {
  return `client-${i}`;
}

export function buildWorkload(scenario: Scenario): Workload {
  const { clients, churn, steps, stepMs, seed } = scenario;
  const n = clients.count;
  const ids = Array.from({ length: n }, (_, i) => clientId(i));
  const tenants = clients.tenants;
  const usernames = tenants.length > 0 ? ids.map((id, i) => `${tenants[i % tenants.length]!}:${id}`) : undefined;

  const sessions = new Prng(seed, 'persistent');
  const persistent = new Uint8Array(n);
  for (let i = 0; i < n; i++) persistent[i] = sessions.next() < clients.persistent ? 1 : 0;

  const sampler: KeySampler = clients.distribution === 'zipf' ? new ZipfSampler(n, clients.exponent) : new UniformSampler(n);
  const rng = new Prng(seed, 'churn');
  const perStep = (n * churn.ratePerHour * stepMs) / 3_600_000;
  const whole = Math.floor(perStep);
  const fraction = perStep - whole;
  // Step 0 is the initial connect of every client; drops start at step 1.
  const counts = new Uint32Array(steps);
  let total = 0;
  for (let s = 1; s < steps; s++) {
    counts[s] = whole + (rng.next() < fraction ? 1 : 0);
    total += counts[s]!;
  }
  const dropStart = new Uint32Array(steps + 1);
  const dropClient = new Uint32Array(total);
  const dropDelay = new Uint32Array(total);
  let k = 0;
  for (let s = 0; s < steps; s++) {
    dropStart[s] = k;
    for (let j = 0; j < counts[s]!; j++, k++) {
      dropClient[k] = sampler.sample(rng);
      dropDelay[k] = Math.max(1, Math.ceil(rng.exponential(churn.reconnectDelayMs) / stepMs));
    }
  }
  dropStart[steps] = k;
  return { ids, usernames, persistent, dropStart, dropClient, dropDelay, sampler };
}
