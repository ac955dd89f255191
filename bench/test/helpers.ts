import { PluginRegistry } from '@tether/core';
import mqttKeys from '@tether/plugin-mqtt-keys';
import leastConnections from '@tether/strategy-least-connections';
import randomTwoChoices from '@tether/strategy-random-two-choices';
import rendezvousHash from '@tether/strategy-rendezvous-hash';
import roundRobin from '@tether/strategy-round-robin';
import stickTable from '@tether/strategy-stick-table';
import { parseScenario } from '../src/load-scenario.ts';
import { runBench, type BenchOptions, type BenchResult, type ChainResult } from '../src/run.ts';

/** The built-in plugins the CLI registers (the CLI depends on this package, so not the other way round). */
export function registry(): PluginRegistry {
  const r = new PluginRegistry();
  for (const p of [...mqttKeys, stickTable, rendezvousHash, leastConnections, roundRobin, randomTwoChoices]) r.register(p);
  return r;
}

/** A small scenario document, with overrides, for fast tests. */
export function scenario(overrides: Record<string, unknown> = {}) {
  return parseScenario({
    backends: ['a', 'b'],
    duration: '2h',
    step: '1m',
    clients: { count: 2_000, persistent: 0.5 },
    churn: { rate: 1, reconnectDelay: '3m' },
    ...overrides,
  });
}

/** Runs the simulator without the machine-dependent measurements (they are tested on their own). */
export function run(doc: Record<string, unknown>, options: Partial<BenchOptions> = {}): Promise<BenchResult> {
  return runBench({ scenario: scenario(doc), registry: registry(), selectionBatch: 0, memoryClients: 0, ...options });
}

export function chain(result: BenchResult, name: string): ChainResult {
  const found = result.chains.find((c) => c.name === name);
  if (!found) throw new Error(`no chain ${name} in ${result.chains.map((c) => c.name).join(', ')}`);
  return found;
}

/** Everything the seed determines, without wall-clock measurements. */
export function reproducible(result: BenchResult): unknown {
  return { ...result, chains: result.chains.map(({ measured: _measured, ...rest }) => rest), environment: undefined };
}
