import { fileURLToPath } from 'node:url';
import { typeScriptNode, type ChildRegistry, type ManagedChild } from './children.ts';
import type { Endpoint } from './loadgen/protocol.ts';

/** Where the brokers come from: the fast responder, embedded aedes brokers, or brokers already running. */
export type BackendSpec =
  | { readonly kind: 'responder'; readonly count: number }
  | { readonly kind: 'embedded'; readonly count: number }
  | { readonly kind: 'external'; readonly addresses: readonly Endpoint[] };

export interface BackendAddress extends Endpoint {
  readonly name: string;
}

export interface Backends {
  readonly spec: BackendSpec;
  readonly addresses: readonly BackendAddress[];
  /** The same brokers' own WebSocket endpoints (path /mqtt), when they have one (embedded). */
  readonly wsAddresses?: readonly BackendAddress[];
  /** The processes serving them, when we started them (their CPU time is reported too). */
  readonly pids: readonly number[];
}

const ENTRY = {
  responder: fileURLToPath(new URL('./responder.ts', import.meta.url)),
  embedded: fileURLToPath(new URL('./embedded-brokers.ts', import.meta.url)),
};
const START_TIMEOUT_MS = 20_000;

/**
 * Starts the backends for a whole run (every target and round uses the same ones): a child
 * process of this Node for the responder or the embedded brokers, which prints its ports once
 * listening; nothing for external brokers.
 */
export async function startBackends(spec: BackendSpec, registry: ChildRegistry): Promise<Backends> {
  if (spec.kind === 'external') {
    return { spec, addresses: spec.addresses.map((a, i) => ({ ...a, name: `broker${i + 1}` })), pids: [] };
  }
  const [node, ...flags] = typeScriptNode();
  const child: ManagedChild = registry.spawn({ role: spec.kind, command: node!, args: [...flags, ENTRY[spec.kind], String(spec.count)] });
  const { ports, wsPorts } = await child.waitForLine((line) => {
    try {
      const parsed = JSON.parse(line) as { ports?: unknown; wsPorts?: unknown };
      return Array.isArray(parsed.ports) ? { ports: parsed.ports as number[], wsPorts: Array.isArray(parsed.wsPorts) ? (parsed.wsPorts as number[]) : undefined } : undefined;
    } catch {
      return undefined;
    }
  }, START_TIMEOUT_MS, 'its listening ports');
  const named = (list: readonly number[]): BackendAddress[] => list.map((port, i) => ({ name: `${spec.kind}${i + 1}`, host: '127.0.0.1', port }));
  return { spec, addresses: named(ports), ...(wsPorts ? { wsAddresses: named(wsPorts) } : {}), pids: [child.pid] };
}

export function describeBackends(backends: Backends): string {
  const list = backends.addresses.map((a) => `${a.host}:${a.port}`).join(', ');
  switch (backends.spec.kind) {
    case 'responder':
      return `fast responder, ${backends.addresses.length} ports (${list})`;
    case 'embedded':
      return `${backends.addresses.length} independent embedded aedes brokers (${list})`;
    case 'external':
      return `external brokers ${list}`;
  }
}
