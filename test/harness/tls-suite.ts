import { afterAll, afterEach, beforeAll } from 'vitest';
import { createTestPki, type TestPki } from './tls-certs.ts';
import { ClientPool } from './traffic-mqtt-clients.ts';
import { ProcessGroup } from './traffic-processes.ts';
import { Teardown } from './traffic-teardown.ts';

export interface TlsSuite {
  readonly teardown: Teardown;
  readonly pool: ClientPool;
  readonly tools: ProcessGroup;
  /** The suite's test CA and certificates, made once before its tests. */
  readonly pki: TestPki;
}

/**
 * The lifecycle every TLS integration file shares: a test PKI made by openssl once per file (not
 * when a required binary is missing, `missing` being the skip reasons), and after each test the
 * MQTT clients, spawned tools and registered resources closed, then `alsoAfterEach`.
 */
export function useTlsSuite(missing: string, alsoAfterEach?: () => Promise<unknown>): TlsSuite {
  const teardown = new Teardown();
  const pool = new ClientPool();
  const tools = new ProcessGroup();
  let pki: TestPki | undefined;
  beforeAll(async () => {
    if (missing === '') pki = await createTestPki();
  }, 60_000);
  afterAll(() => pki?.remove());
  afterEach(async () => {
    await pool.closeAll();
    await tools.killAll();
    await alsoAfterEach?.();
    await teardown.run();
  }, 30_000);
  return {
    teardown,
    pool,
    tools,
    get pki(): TestPki {
      if (!pki) throw new Error('the test PKI is made in beforeAll; it is not there (a binary is missing?)');
      return pki;
    },
  };
}
