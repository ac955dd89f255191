import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ChainError } from '../src/errors.ts';
import { loadScenario } from '../src/load-scenario.ts';
import { runBench } from '../src/run.ts';
import { registry, run } from './helpers.ts';

const TENANT_PLUGIN = fileURLToPath(new URL('../../examples/plugins/tenant-affinity/src/index.ts', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/bench/', import.meta.url));

describe('plugins as the balancer loads them', () => {
  it('runs a third-party strategy loaded by path, with its options, and it decides', async () => {
    const result = await run(
      {
        backends: ['a', 'b', 'c'],
        clients: { count: 1_000, persistent: 1, tenants: ['acme', 'globex'] },
        chains: [[{ use: 'example:tenant-affinity', options: { tenants: { acme: ['a'], globex: ['b', 'c'] } } }, 'least-connections']],
      },
      { plugins: [TENANT_PLUGIN] },
    );
    const c = result.chains[0]!;
    // Half the clients are acme's and all of them are on a; globex's share b and c.
    expect(c.sessions.a).toBe(500);
    expect(c.sessions.b! + c.sessions.c!).toBe(500);
    expect(c.totals.stickiness).toBe(1);
  });

  it('the shipped tenants scenario loads the plugin relative to its own file', async () => {
    const scenario = loadScenario(`${EXAMPLES}tenants.yaml`, { clients: 600 });
    expect(scenario.plugins[0]).toBe(TENANT_PLUGIN);
    const result = await runBench({ scenario, registry: registry(), selectionBatch: 0, memoryClients: 0 });
    expect(result.chains.map((c) => c.name)).toContain('tenant-affinity(hash)+least-connections');
  });

  it('invalid plugin options fail with the plugin\'s own message, naming the chain', async () => {
    const error = await run({ chains: [[{ use: 'stick-table', options: { expire: 'soon' } }, 'least-connections']] }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ChainError);
    expect((error as Error).message).toMatch(/^chain "stick-table\+least-connections": plugin "stick-table": invalid options: expire/);
  });

  it('a chain the balancer would refuse (nothing always answers) is refused here too', async () => {
    const error = await run({ chains: [['stick-table']] }).catch((err: unknown) => err);
    expect((error as Error).message).toMatch(/can leave a client without a backend/);
  });

  it('an unknown plugin name lists the known strategies', async () => {
    const error = await run({ chains: [['sticky-table', 'least-connections']] }).catch((err: unknown) => err);
    expect((error as Error).message).toMatch(/"sticky-table".*known: .*stick-table/);
  });
});
