import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';

const run = promisify(execFile);

/**
 * Debian's `redis-server` for the tests: one server (or a cluster of three) on free loopback
 * ports, each in a temp directory, persistence off (`--save ''`, no AOF), stopped by PID. A server
 * can be stopped and started again on the same port, which is how a test makes Redis "go away and
 * come back" with an empty keyspace (a restart without persistence).
 */

export interface RedisServerOptions {
  /** `requirepass`: clients must AUTH with it (the default user). */
  readonly password?: string;
  /** TLS only (no plain port): the server's certificate and key, and the CA clients are checked against. */
  readonly tls?: {
    readonly cert: string;
    readonly key: string;
    readonly ca: string;
    /** Require client certificates; `client` is the one redis-cli presents. */
    readonly clientCerts?: boolean;
    readonly client?: { readonly cert: string; readonly key: string };
  };
  /** More `--option value` pairs for redis-server. */
  readonly args?: readonly string[];
  /** Reuse this port (a restart); by default a free one. */
  readonly port?: number;
}

const READY = /Ready to accept connections/;
const START_TIMEOUT_MS = 10_000;

export class RedisServer {
  readonly port: number;
  readonly options: RedisServerOptions;
  readonly dir: string;
  #child: ChildProcess | undefined;
  #log = '';
  /** Command line and readiness line, when not a plain server (a sentinel). */
  #custom: { args: string[]; ready: RegExp } | undefined;

  private constructor(port: number, dir: string, options: RedisServerOptions) {
    this.port = port;
    this.dir = dir;
    this.options = options;
  }

  /** A redis-server with its own command line (a sentinel), ready once it prints `ready`. */
  static async startWith(port: number, dir: string, args: string[], ready: RegExp): Promise<RedisServer> {
    const server = new RedisServer(port, dir, {});
    server.#custom = { args, ready };
    try {
      await server.#boot();
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return server;
  }

  /** Starts a server on a free loopback port (retrying if another process takes it first). */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RedisServer(options.port ?? (await freePort()), mkdtempSync(join(tmpdir(), 'tether-redis-')), options);
      try {
        await server.#boot();
        return server;
      } catch (err) {
        rmSync(server.dir, { recursive: true, force: true });
        lastError = err;
        if (options.port !== undefined || !/Address already in use/i.test(String(err))) throw err;
      }
    }
    throw lastError;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** `redis://` (or `rediss://` with TLS) URL with the password, for the balancer's config. */
  get url(): string {
    const auth = this.options.password ? `:${encodeURIComponent(this.options.password)}@` : '';
    return `${this.options.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${this.port}/0`;
  }

  /** What the server printed so far (for failure messages). */
  get log(): string {
    return this.#log;
  }

  /** Stops it: SIGTERM (a clean shutdown) or SIGKILL (Redis dies), by PID; resolves once it has exited. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid!, signal);
    await exited;
  }

  /** Starts it again on the same port, with an empty keyspace (no persistence). */
  async restart(): Promise<void> {
    await this.stop();
    // The port was ours a moment ago; a client's TIME_WAIT does not block a listening socket.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#boot();
        return;
      } catch (err) {
        if (attempt >= 20 || !/Address already in use/i.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /**
   * Makes the next (re)start load `from`'s keys: `from` saves a snapshot (SAVE) that is copied
   * here. Stands for a Redis that comes back with data another writer put there meanwhile.
   */
  async seedFrom(from: RedisServer): Promise<void> {
    await from.cli('SAVE');
    copyFileSync(join(from.dir, 'dump.rdb'), join(this.dir, 'dump.rdb'));
  }

  /** Stops it and removes its directory. */
  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs one command with redis-cli and returns its raw output (trimmed). */
  async cli(...args: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', [...this.cliArgs(), ...args], { timeout: 10_000 });
    return stdout.trim();
  }

  /** redis-cli's connection arguments for this server. */
  cliArgs(): string[] {
    const tls = this.options.tls;
    return [
      '-h', '127.0.0.1', '-p', String(this.port),
      ...(this.options.password ? ['--no-auth-warning', '-a', this.options.password] : []),
      ...(tls ? ['--tls', '--cacert', tls.ca, ...(tls.client ? ['--cert', tls.client.cert, '--key', tls.client.key] : [])] : []),
    ];
  }

  #args(): string[] {
    const { password, tls, args = [] } = this.options;
    return [
      '--bind', '127.0.0.1',
      ...(tls
        ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', tls.clientCerts ? 'yes' : 'no']
        : ['--port', String(this.port)]),
      '--dir', this.dir,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--logfile', '',
      ...(password ? ['--requirepass', password] : []),
      ...args,
    ];
  }

  async #boot(): Promise<void> {
    this.#log = '';
    const child = spawn('redis-server', this.#custom?.args ?? this.#args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    const readyLine = this.#custom?.ready ?? READY;
    this.#child = child;
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server on ${this.port} not ready after ${START_TIMEOUT_MS} ms:\n${this.#log}`)), START_TIMEOUT_MS);
      const onData = (d: Buffer): void => {
        this.#log += d.toString('utf8');
        if (readyLine.test(this.#log)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`redis-server on ${this.port} exited (${code ?? signal}):\n${this.#log}`));
      });
    });
    await ready;
  }
}

/** Three masters (no replicas) made into one cluster with `redis-cli --cluster create`. */
export class RedisCluster {
  readonly nodes: readonly RedisServer[];

  private constructor(nodes: readonly RedisServer[]) {
    this.nodes = nodes;
  }

  static async start(count = 3, options: Pick<RedisServerOptions, 'password'> = {}): Promise<RedisCluster> {
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < count; i++) {
        // The cluster bus listens on port + 10000: both must be free.
        const port = await freePortWithBus();
        nodes.push(await RedisServer.start({ ...options, port, args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'] }));
      }
      const cluster = new RedisCluster(nodes);
      await run('redis-cli', [...(options.password ? ['--no-auth-warning', '-a', options.password] : []), '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
      await cluster.#waitOk();
      return cluster;
    } catch (err) {
      await Promise.all(nodes.map((n) => n.close()));
      throw err;
    }
  }

  /** `host:port` of every node, as `store.nodes` takes them. */
  get addresses(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.close()));
  }

  /** Every node agrees the cluster is up (all slots covered), polled with a bound. */
  async #waitOk(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const states = await Promise.all(this.nodes.map((n) => n.cli('cluster', 'info')));
      if (states.every((s) => /cluster_state:ok/.test(s))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the Redis cluster did not reach cluster_state:ok within 10 s');
  }
}

/**
 * A Redis Sentinel (`redis-server FILE --sentinel`) monitoring `master` as `name`, quorum 1, that
 * declares it down after 1 s and fails over to a replica.
 */
export class RedisSentinel {
  readonly port: number;
  readonly name: string;
  readonly #server: RedisServer;

  private constructor(server: RedisServer, name: string) {
    this.#server = server;
    this.port = server.port;
    this.name = name;
  }

  static async start(master: RedisServer, name = 'mymaster'): Promise<RedisSentinel> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'tether-sentinel-'));
    const conf = join(dir, 'sentinel.conf');
    // Sentinel rewrites its file (it records the replicas it finds): it must be writable.
    writeFileSync(conf, [
      `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`, '',
    ].join('\n'));
    const server = await RedisServer.startWith(port, dir, [conf, '--sentinel'], /monitor master/);
    return new RedisSentinel(server, name);
  }

  /** `host:port`, as `store.sentinels` takes it. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The address the sentinel gives for the master now. */
  async master(): Promise<string> {
    return (await this.#server.cli('SENTINEL', 'get-master-addr-by-name', this.name)).split('\n').join(':');
  }

  close(): Promise<void> {
    return this.#server.close();
  }
}

/** A free loopback port whose cluster bus port (+10000) is free too. */
async function freePortWithBus(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    if (port + 10_000 <= 65_535 && (await portFree(port + 10_000))) return port;
  }
  throw new Error('no free port pair (port, port + 10000) on loopback after 50 tries');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port }, () => server.close(() => resolve(true)));
  });
}

/** Resolves true when something accepts TCP connections on the port now. */
export function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
