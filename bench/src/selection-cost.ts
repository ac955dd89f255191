import type { Balancer } from './balancer.ts';
import type { ConnFactory } from './conn-factory.ts';
import type { Prng } from './prng.ts';
import type { Workload } from './workload.ts';

export interface SelectionCost {
  /** Wall-clock nanoseconds per `select` of the whole chain, as the balancer calls it. */
  readonly nsPerSelection: number;
  readonly batch: number;
}

const ROUNDS = 10;

/**
 * Times the chain's `select` over a batch of connections of clients drawn from the scenario's key
 * distribution, against the balancer's state at the end of the run (a warm table). Connections
 * are built before the clock starts, so only selection is timed, including the chain's own
 * overhead (one awaited promise per call, as in the pipeline). The best of a few rounds is kept:
 * the noise on a shared machine (other processes, a GC pause) only ever adds time. Undefined
 * when no backend is available.
 */
export async function measureSelection(balancer: Balancer, workload: Workload, newConn: ConnFactory, rng: Prng, batch: number): Promise<SelectionCost | undefined> {
  const available = balancer.pool.available();
  if (available.length === 0 || batch < 1) return undefined;
  const conns = Array.from({ length: batch }, () => newConn(workload.sampler.sample(rng)));
  // Warm-up: let V8 optimize the strategies' code before it is timed.
  for (let i = 0; i < Math.min(batch, 5_000); i++) await balancer.chain.select(conns[i]!, available);
  // Start from a clean heap when we can, so a collection of the simulation's garbage is not timed.
  (globalThis as { gc?: () => void }).gc?.();
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) await balancer.chain.select(conns[i]!, available);
    const ns = Number(process.hrtime.bigint() - start) / batch;
    if (ns < best) best = ns;
  }
  return { nsPerSelection: best, batch };
}
