import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backends } from './backends.ts';
import { typeScriptNode, type ChildRegistry, type ManagedChild } from './children.ts';
import { haproxyConfig } from './haproxy-config.ts';
import { freePort, isListening, pollUntil } from './listening.ts';
import type { Endpoint } from './loadgen/protocol.ts';

/** What the clients connect to: a Tether (default config or a given file), or a baseline. */
export type TargetSpec =
  | {
      readonly kind: 'tether'; readonly name: string; readonly configFile?: string; readonly workers?: number; readonly metrics?: false; readonly store?: 'redis';
      /** WebSocket pass-through: the backends are the brokers' own WebSocket endpoints (only the ws- scenarios can run). */
      readonly passThrough?: true;
    }
  | { readonly kind: 'direct'; readonly name: 'direct' }
  | { readonly kind: 'haproxy'; readonly name: 'haproxy' }
  | { readonly kind: 'node'; readonly name: 'node' };

export interface RunningTarget {
  readonly spec: TargetSpec;
  readonly endpoints: readonly Endpoint[];
  /** Where the same balancer takes MQTT over WebSocket (Tether's WebSocket listener, bridged); none for the baselines. */
  readonly wsEndpoints?: readonly Endpoint[];
  /** The balancer process, measured for CPU and RSS; none for direct. */
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 20_000;
const NODE_PROXY = fileURLToPath(new URL('./node-proxy.ts', import.meta.url));
/** Attempts at starting on a free port: another process may take it between our check and the bind. */
const START_ATTEMPTS = 3;

/**
 * One Tether target per config file (or one with the default configuration), times each worker
 * count, times metrics on and off, times each store: `tether`, `tether:2w` (2 workers),
 * `tether:nometrics`, `tether:FILE`, `tether:FILE:2w`, and with `redis` also `tether:redis`,
 * `tether:2w:redis`, … (the stick table on the run's Redis).
 */
export function tetherTargets(configFiles: readonly string[], workers: readonly number[] = [1], metrics: readonly boolean[] = [true], stores: readonly ('memory' | 'redis')[] = ['memory']): TargetSpec[] {
  const files: (string | undefined)[] = configFiles.length === 0 ? [undefined] : [...configFiles];
  const names = new Set<string>();
  return files.flatMap((file) => workers.flatMap((n) => metrics.flatMap((on) => stores.map((store): TargetSpec => {
    const base = file === undefined ? 'tether' : `tether:${basename(file).replace(/\.(ya?ml|json)$/i, '')}`;
    const wanted = `${base}${n > 1 ? `:${n}w` : ''}${on ? '' : ':nometrics'}${store === 'redis' ? ':redis' : ''}`;
    let name = wanted;
    for (let i = 2; names.has(name); i++) name = `${wanted}#${i}`;
    names.add(name);
    return { kind: 'tether', name, ...(file !== undefined ? { configFile: file } : {}), ...(n > 1 ? { workers: n } : {}), ...(on ? {} : { metrics: false as const }), ...(store === 'redis' ? { store } : {}) };
  }))));
}

/** The memory-store target each Redis-store target is compared with: the same name without `:redis`. */
export function storePairs(targets: readonly TargetSpec[]): [redis: string, memory: string][] {
  const names = new Set(targets.map((t) => t.name));
  return targets.flatMap((t) => {
    if (t.kind !== 'tether' || t.store !== 'redis') return [];
    const memory = t.name.replace(/:redis(#\d+)?$/, '$1');
    return names.has(memory) ? [[t.name, memory] as [string, string]] : [];
  });
}

export function haproxyInstalled(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v haproxy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function haproxyVersion(): string | undefined {
  try {
    return /version (\S+)/.exec(execFileSync('haproxy', ['-v'], { encoding: 'utf8' }))?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Starts a target in its own process (none for direct) and waits, bounded, until it listens.
 * `tetherCommand` is how to run the tether CLI: [node, path/to/tether.js].
 */
export async function startTarget(spec: TargetSpec, backends: Backends, registry: ChildRegistry, tetherCommand: readonly string[], logLevel = 'warn', redisUrl?: string): Promise<RunningTarget> {
  if (spec.kind === 'direct') return { spec, endpoints: backends.addresses, pid: undefined, stop: async () => {} };
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freePort();
    try {
      if (spec.kind === 'tether') return await startTether(spec, port, backends, registry, tetherCommand, logLevel, redisUrl);
      if (spec.kind === 'node') return await startNodeProxy(spec, port, backends, registry);
      return await startHaproxy(spec, port, backends, registry);
    } catch (err) {
      lastError = err;
      if (!/EADDRINUSE|address already in use|cannot bind/i.test(String(err))) throw err;
    }
  }
  throw lastError;
}

async function startTether(spec: Extract<TargetSpec, { kind: 'tether' }>, port: number, backends: Backends, registry: ChildRegistry, tetherCommand: readonly string[], logLevel: string, redisUrl: string | undefined): Promise<RunningTarget> {
  const [command, ...prefix] = tetherCommand;
  if (!command) throw new Error('no tether command to start the balancer with');
  // The file gives strategies, plugins and timeouts; the benchmark gives the listener and the
  // backends (the same for every target). Level warn by default: no log line per connection,
  // like HAProxy without `option tcplog`.
  // With several workers the listener is open as soon as the first one listens; the primary opens
  // its admin API only once every worker does, so that port says when the whole balancer is up.
  const workers = spec.workers ?? 1;
  const adminPort = workers > 1 ? await freePort() : undefined;
  const wsPort = await freePort();
  // Pass-through backends are objects (`websocket: { path }`), which only a file can say.
  const passThrough = spec.passThrough ? passThroughConfig(backends) : undefined;
  const args = [
    ...prefix, 'start',
    ...(spec.configFile ? ['-c', spec.configFile] : []),
    ...(passThrough ? ['-c', passThrough.file] : []),
    '--listen', `127.0.0.1:${port}`,
    '--ws-listen', `127.0.0.1:${wsPort}`,
    ...(passThrough ? [] : backends.addresses.flatMap((b) => ['--backend', `${b.name}=${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`])),
    '--log-level', logLevel,
    ...(spec.store === 'redis' ? ['--redis', requireRedis(redisUrl, spec.name)] : []),
    ...(workers > 1 ? ['--workers', String(workers), '--admin', `127.0.0.1:${adminPort}`] : []),
  ];
  // Metrics off through the environment, so that a config file given with -c keeps its say on the rest.
  const child = registry.spawn({ role: spec.name, command, args, ...(spec.metrics === false ? { env: { TETHER_METRICS_ENABLED: 'false' } } : {}) });
  await waitListening(child, adminPort ?? port).catch((err: unknown) => {
    passThrough?.remove();
    throw err;
  });
  if (adminPort !== undefined && !isListening(port)) {
    await child.stop();
    throw new Error(`${spec.name} opened its admin API but does not listen on port ${port}:\n${child.tail()}`);
  }
  const stop = async (): Promise<void> => {
    await child.stop();
    passThrough?.remove();
  };
  return { spec, endpoints: [{ host: '127.0.0.1', port }], wsEndpoints: [{ host: '127.0.0.1', port: wsPort, websocket: '/mqtt' }], pid: child.pid, stop };
}

/** A temporary configuration file naming the brokers' WebSocket endpoints as pass-through backends. */
function passThroughConfig(backends: Backends): { file: string; remove: () => void } {
  if (!backends.wsAddresses) throw new Error('the WebSocket pass-through target needs brokers with WebSocket endpoints (--backend embedded)');
  const dir = mkdtempSync(join(tmpdir(), 'tether-bench-ws-'));
  const file = join(dir, 'pass-through.json');
  writeFileSync(file, JSON.stringify({ backends: backends.wsAddresses.map((b) => ({ name: b.name, address: `${b.host}:${b.port}`, websocket: { path: '/mqtt' } })) }));
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function requireRedis(url: string | undefined, name: string): string {
  if (!url) throw new Error(`${name} needs the run's Redis, which was not started`);
  return url;
}

/**
 * The Redis server of a run with Redis-store targets: Debian's redis-server on a free loopback
 * port, persistence off, stopped by PID with the rest of the run.
 */
export async function startRedis(registry: ChildRegistry): Promise<{ url: string; pid: number }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freePort();
    const child = registry.spawn({ role: 'redis', command: 'redis-server', args: ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', ''] });
    try {
      await waitListening(child, port);
      return { url: `redis://127.0.0.1:${port}/0`, pid: child.pid };
    } catch (err) {
      lastError = err;
      if (!/Address already in use/i.test(String(err))) throw err;
    }
  }
  throw lastError;
}

export function redisInstalled(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The `node` baseline (node-proxy.ts): Node's own floor for a TCP balancer. */
async function startNodeProxy(spec: TargetSpec, port: number, backends: Backends, registry: ChildRegistry): Promise<RunningTarget> {
  const [node, ...flags] = typeScriptNode();
  const addresses = backends.addresses.map((b) => `${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`);
  const child = registry.spawn({ role: 'node', command: node!, args: [...flags, NODE_PROXY, String(port), ...addresses] });
  await waitListening(child, port);
  return { spec, endpoints: [{ host: '127.0.0.1', port }], pid: child.pid, stop: () => child.stop() };
}

async function startHaproxy(spec: TargetSpec, port: number, backends: Backends, registry: ChildRegistry): Promise<RunningTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'tether-bench-haproxy-'));
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, haproxyConfig(port, backends.addresses));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    // -db: foreground, no daemon and no master process, so the PID we hold is the one that works.
    const child = registry.spawn({ role: 'haproxy', command: 'haproxy', args: ['-f', file, '-db'] });
    await waitListening(child, port).catch(async (err: unknown) => {
      await child.stop();
      throw err;
    });
    return {
      spec,
      endpoints: [{ host: '127.0.0.1', port }],
      pid: child.pid,
      stop: async () => {
        await child.stop();
        cleanup();
      },
    };
  } catch (err) {
    cleanup();
    throw err;
  }
}

async function waitListening(child: ManagedChild, port: number): Promise<void> {
  try {
    await pollUntil(() => !child.running || isListening(port), START_TIMEOUT_MS, () => `${child.role} to listen on port ${port}`);
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}; its output:\n${child.tail()}`);
  }
  if (!child.running) {
    // Let the output of a failed start arrive before quoting it.
    await child.exited;
    throw new Error(`${child.role} exited at start:\n${child.tail()}`);
  }
}
