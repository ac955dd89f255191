import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinRegistry } from '@tether/cli';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.ts';
import { createTether, resolve } from '../../src/di/container.ts';
import { Tokens } from '../../src/di/tokens.ts';
import { ConfigError, PluginError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { PluginRegistry } from '../../src/plugins/plugin-registry.ts';
import type { TetherServer } from '../../src/tether-server.ts';
import { connInfo } from '../fixtures.ts';

const servers: TetherServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tether-container-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function build(overrides: Record<string, unknown>, registry: PluginRegistry = builtinRegistry()) {
  const config = loadConfig({ env: {}, overrides: { listen: '127.0.0.1:0', backends: ['a=127.0.0.1:1'], ...overrides } });
  const built = await createTether({ config, registry, log: createLogger('silent') });
  servers.push(built.server);
  return built;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected createTether to fail');
}

describe('createTether', () => {
  it('builds the three chains in config order and registers them in its own container', async () => {
    const { container, server } = await build({ key: ['username', 'client-id'], select: ['stick-table', 'least-connections'], sinks: ['proxy-protocol'] });
    expect(resolve(container, Tokens.ExtractorChain).map((e) => e.name)).toEqual(['username', 'client-id']);
    expect(server.strategies.strategies.map((s) => s.name)).toEqual(['stick-table', 'least-connections']);
    expect(resolve(container, Tokens.SinkChain).map((s) => s.name)).toEqual(['proxy-protocol']);
    expect(resolve(container, Tokens.Server)).toBe(server); // one server per container
    expect(server.pool.all().map((b) => b.id)).toEqual(['a']);
  });

  it.each([
    ['ends with a strategy that can abstain', ['stick-table']],
    ['puts the answering strategy first', ['least-connections', 'stick-table']],
    ['is empty', []],
  ])('rejects a select chain that %s', async (_name, select) => {
    const err = await failure(build({ select }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(`select: the strategy chain [${select.join(', ')}] can leave a client without a backend`);
    expect(err.message).toContain('least-connections');
  });

  it('propagates a plugin error (unknown name) from any chain', async () => {
    const err = await failure(build({ key: ['client-idd'] }));
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).code).toBe('TETHER_ERR_PLUGIN_UNKNOWN');
    expect(err.message).toContain('known: client-id, username');
  });

  it('loads the modules listed under plugins, relative to the config file, before building chains', async () => {
    writeFileSync(join(dir, 'first.mjs'), `export default {
      name: 'acme:first', kind: 'strategy', apiVersion: 1,
      create: () => ({ select: (_conn, backends) => ({ kind: 'selected', backend: backends[0] }) }),
    };`);
    const file = join(dir, 'tether.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:0\nbackends: [a=127.0.0.1:1]\nplugins: [./first.mjs]\nselect: [acme:first, least-connections]\n');
    const config = loadConfig({ file, env: {} });
    const { server } = await createTether({ config, registry: builtinRegistry(), log: createLogger('silent') });
    servers.push(server);
    expect(server.strategies.strategies.map((s) => s.name)).toEqual(['acme:first', 'least-connections']);
    const choice = await server.strategies.select(connInfo(), server.pool.available());
    expect(choice).toMatchObject({ strategy: 'acme:first', backend: { id: 'a' } });
  });

  it('keeps two balancers in one process independent', async () => {
    const one = await build({});
    const two = await build({});
    expect(one.container).not.toBe(two.container);
    expect(one.server.pool).not.toBe(two.server.pool);
    const a = one.server.pool.get('a')!;
    one.server.strategies.spliced(connInfo({}, 'k'), a);
    const [tableOne] = await one.server.strategies.tables();
    const [tableTwo] = await two.server.strategies.tables();
    expect(tableOne?.used).toBe(1);
    expect(tableTwo?.used).toBe(0);
  });
});
