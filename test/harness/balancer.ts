import { createLogger, createTether, loadConfig, type Logger, type TableEntry, type TetherServer } from '@tether/core';
import { builtinRegistry } from '@tether/cli';
import { pino } from 'pino';

export interface TestBalancer {
  readonly server: TetherServer;
  readonly port: number;
  readonly url: string;
  /** Log lines written by the balancer, parsed. */
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/**
 * An in-process balancer on 127.0.0.1:0 built exactly as `tether start` builds one (same config
 * loader, same built-in plugins), with its log captured for assertions.
 */
export async function startBalancer(overrides: Record<string, unknown>, file?: string): Promise<TestBalancer> {
  const sources = { env: {}, file, overrides: { listen: '127.0.0.1:0', 'log.level': 'debug', ...overrides } };
  const config = loadConfig(sources);
  const logs: Record<string, unknown>[] = [];
  const log: Logger = createLogger(config.log.level, {
    write: (line: string) => {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  } as pino.DestinationStream);
  // A reload reads the same file and overrides again, as `tether start` reads its file and flags.
  const { server } = await createTether({ config, registry: builtinRegistry(), log, source: { file, read: () => loadConfig(sources) } });
  await server.start();
  const { port } = server.address;
  return { server, port, url: `mqtt://127.0.0.1:${port}`, logs, close: () => server.close() };
}

/** The entries of the balancer's table named `name` (the stick table by default); empty when it keeps none. */
export async function tableEntries(balancer: TestBalancer, name = 'stick-table'): Promise<TableEntry[]> {
  const tables = await balancer.server.strategies.tables();
  return [...(tables.find((t) => t.name === name)?.entries ?? [])];
}

/** The backend the stick table holds for `key`, if it has an entry. */
export async function stuckTo(balancer: TestBalancer, key: string): Promise<string | undefined> {
  return (await tableEntries(balancer)).find((e) => e.key === key)?.backend;
}
