import { formatHostPort, type HostPort } from './address.ts';

/** A server of its own address (the admin API, the metrics listener). */
export interface Bindable {
  start(address: HostPort): Promise<HostPort>;
  close(): Promise<void>;
}

/** One such server as it runs: the server, and where it is bound. */
export interface Bound<S extends Bindable> {
  readonly server: S;
  readonly address: HostPort;
}

/** What a reload would do to it; nothing is closed until `commit`. */
export interface RebindPlan {
  /** Puts the new server in place and closes the old one; one line per change. */
  commit(): string[];
  /** Abandons the plan: closes what it bound. */
  rollback(): Promise<void>;
}

const NOTHING: RebindPlan = { commit: () => [], rollback: async () => {} };

/**
 * A reload asks for `wanted` where `configured` was asked before: when that moves, opens or closes
 * the server, the new one is bound now (a failure fails the reload with nothing changed) and the
 * old one is closed at commit. `install` records the server in force.
 */
export async function planRebind<S extends Bindable>(
  what: string,
  current: Bound<S> | undefined,
  configured: HostPort | undefined,
  wanted: HostPort | undefined,
  make: () => S,
  install: (next: Bound<S> | undefined) => void,
): Promise<RebindPlan> {
  const same = current && wanted && configured && configured.host === wanted.host && configured.port === wanted.port;
  if (same || (!current && !wanted)) return NOTHING;
  const server = wanted ? make() : undefined;
  const next = server && wanted ? { server, address: await server.start(wanted) } : undefined;
  return {
    commit: () => {
      install(next);
      if (current) void current.server.close();
      if (!current) return next ? [`${what} opened on ${formatHostPort(next.address)}`] : [];
      return [next ? `${what} moved ${formatHostPort(current.address)} → ${formatHostPort(next.address)}` : `${what} on ${formatHostPort(current.address)} closed`];
    },
    rollback: async () => next?.server.close(),
  };
}
