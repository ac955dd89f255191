import { fileURLToPath } from 'node:url';
import type { TestBalancer } from './balancer.ts';
import { logLines, waitFor } from './poll.ts';

/** Path of the test extractor that logs `conn.tls` ("tls facts"), for `plugins:`. */
export const TLS_FACTS_PROBE = fileURLToPath(new URL('./tls-facts-probe.ts', import.meta.url));

/** A `listeners:` entry: a TLS listener on a free loopback port with the tls transport's options. */
export function tlsListener(options: Record<string, unknown>, name = 'tls'): Record<string, unknown> {
  return { name, address: '127.0.0.1:0', transports: [{ use: 'tls', options }] };
}

/** The port a named listener of the balancer is bound to. */
export function portOf(balancer: TestBalancer, name = 'tls'): number {
  const address = balancer.server.addresses.get(name);
  if (!address) throw new Error(`the balancer has no listener named ${name}`);
  return address.port;
}

/**
 * Waits (bounded) until the balancer has refused `count` connections for `reason`, and returns
 * its "connection rejected" log lines for that reason. Refusals are counted after the socket
 * closes, so a client's view of the refusal can come first.
 */
export async function rejections(balancer: TestBalancer, reason: string, count = 1): Promise<Record<string, unknown>[]> {
  await waitFor(() => balancer.server.stats.get(`rejected_${reason}`) >= count, {
    what: () => `${count} rejection(s) for ${reason}; counters: ${JSON.stringify(balancer.server.stats.snapshot())}`,
  });
  return logLines(balancer.logs, { msg: 'connection rejected', reason });
}

/** The "tls facts" lines the probe logged for a client id. */
export async function factsOf(balancer: TestBalancer, clientId: string): Promise<Record<string, unknown>> {
  const line = await waitFor(() => logLines(balancer.logs, { msg: 'tls facts', clientId })[0], { what: `the TLS facts of ${clientId}` });
  return line.tls as Record<string, unknown>;
}
