import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ChainEntry, ConfigSources, TetherConfig } from '@tether/core';
import { COMMAND_USAGE, type Command } from './usage.ts';

/** Flags shared by every command that reads the configuration (start, validate, explain, plugins). */
export const CONFIG_FLAGS = {
  config: { type: 'string', short: 'c' },
  listen: { type: 'string' },
  backend: { type: 'string', multiple: true },
  'backend-dns': { type: 'string', multiple: true },
  'backend-srv': { type: 'string', multiple: true },
  'backend-file': { type: 'string', multiple: true },
  resolver: { type: 'string', multiple: true },
  'send-proxy': { type: 'string' },
  admin: { type: 'string' },
  'metrics-listen': { type: 'string' },
  key: { type: 'string' },
  select: { type: 'string' },
  sinks: { type: 'string' },
  plugin: { type: 'string', multiple: true },
  retries: { type: 'string' },
  'health-check': { type: 'string' },
  'sniff-timeout': { type: 'string' },
  'sniff-max-bytes': { type: 'string' },
  'log-level': { type: 'string' },
  workers: { type: 'string' },
  'tls-listen': { type: 'string' },
  'ws-listen': { type: 'string' },
  'wss-listen': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-verify': { type: 'string' },
  redis: { type: 'string' },
} as const;

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** A mistake in how a command was called: exit 2. `usage`, when set, is printed after the message. */
export class UsageError extends Error {
  readonly usage: string | undefined;
  constructor(message: string, usage?: string) {
    super(message);
    this.usage = usage;
  }
}

/** `-h` or `--help` anywhere before a `--`: the user wants the usage, whatever else is on the line. */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '-h' || arg === '--help') return true;
  }
  return false;
}

/**
 * Parses a command's arguments. With -h/--help it prints `usage` on stdout and returns undefined:
 * the command then returns at once, before reading a file, binding a port or connecting. An
 * unknown option, or one missing its value, is a UsageError that names it and carries `usage`.
 */
export function parseCommand(argv: string[], usage: string, options: FlagSpec): { values: FlagValues; positionals: string[] } | undefined {
  if (wantsHelp(argv)) {
    process.stdout.write(usage);
    return undefined;
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: values as FlagValues, positionals };
  } catch (err) {
    throw new UsageError(parseErrorMessage(err as Error & { code?: string }), usage);
  }
}

/** Node's parseArgs messages, shortened to what the user needs: which option, what is wrong. */
function parseErrorMessage(err: Error & { code?: string }): string {
  const option = /'([^']+)'/.exec(err.message)?.[1]?.replace(/ <value>$/, '');
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}`;
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    return /does not take/.test(err.message) ? `option ${option} takes no value` : `option ${option} needs a value`;
  }
  return err.message;
}

/** Exactly the positionals `names` (e.g. KEY BACKEND), else a usage error naming what is missing or extra. */
export function expectPositionals(command: Command, positionals: readonly string[], names: readonly string[]): string[] {
  if (positionals.length < names.length) throw new UsageError(`${command} needs ${names.slice(positionals.length).join(' ')}`, COMMAND_USAGE[command]);
  if (positionals.length > names.length) throw new UsageError(`${command}: unexpected argument "${positionals[names.length]!}"`, COMMAND_USAGE[command]);
  return [...positionals];
}

const list = (v: unknown): string[] | undefined => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
const int = (flag: string, v: unknown): number | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new UsageError(`--${flag} must be a whole number, got "${String(v)}"`);
  return Number(v);
};

/** Turns command-line flags into config sources: flags override the file and the environment. */
export function configSources(values: FlagValues): ConfigSources {
  const sendProxy = values['send-proxy'];
  if (sendProxy !== undefined && !['none', 'v1', 'v2'].includes(String(sendProxy))) {
    throw new UsageError(`--send-proxy must be one of none, v1, v2; got "${String(sendProxy)}"`);
  }
  const backends = values.backend as string[] | undefined;
  const overrides: Record<string, unknown> = {
    listen: values.listen,
    'admin.listen': values.admin,
    'metrics.listen': values['metrics-listen'],
    backends: backends?.map((text) => {
      const eq = text.indexOf('=');
      const [name, address] = eq > 0 ? [text.slice(0, eq), text.slice(eq + 1)] : [text, text];
      return sendProxy ? { name, address, sendProxy } : `${name}=${address}`;
    }),
    key: list(values.key),
    select: list(values.select),
    sinks: list(values.sinks),
    plugins: values.plugin,
    retries: int('retries', values.retries),
    'healthCheck.type': values['health-check'],
    'sniff.timeout': values['sniff-timeout'],
    'sniff.maxBytes': int('sniff-max-bytes', values['sniff-max-bytes']),
    'log.level': values['log-level'],
    workers: values.workers,
    listeners: quickListeners(values),
    providers: providerFlags(values),
  };
  const redis = values.redis;
  return {
    file: values.config as string | undefined,
    overrides,
    ...(typeof redis === 'string' ? { adjust: (config) => withRedisStore(config, redis) } : {}),
  };
}

/**
 * The discovery quick start: --backend-dns NAME:PORT (A records), --backend-srv NAME (SRV records)
 * and --backend-file FILE, each repeatable; --resolver HOST:PORT (repeatable) asks those DNS
 * servers instead of the system's. Like --backend for backends, they replace the file's `providers`.
 */
function providerFlags(values: FlagValues): unknown[] | undefined {
  const dns = (values['backend-dns'] as string[] | undefined) ?? [];
  const srv = (values['backend-srv'] as string[] | undefined) ?? [];
  const files = (values['backend-file'] as string[] | undefined) ?? [];
  const resolvers = (values.resolver as string[] | undefined) ?? [];
  if (dns.length + srv.length + files.length === 0) {
    if (resolvers.length > 0) throw new UsageError('--resolver sets the DNS servers of --backend-dns and --backend-srv: give one of them too');
    return undefined;
  }
  const common = resolvers.length > 0 ? { resolvers } : {};
  return [
    ...dns.map((text) => {
      const colon = text.lastIndexOf(':');
      const port = colon > 0 ? text.slice(colon + 1) : '';
      if (!/^\d+$/.test(port)) throw new UsageError(`--backend-dns takes NAME:PORT (e.g. emqx.example:1883); got "${text}"`);
      return { use: 'dns', options: { name: text.slice(0, colon), port: Number(port), ...common } };
    }),
    ...srv.map((name) => ({ use: 'dns', options: { name, type: 'SRV', ...common } })),
    ...files.map((file) => ({ use: 'file', options: { path: resolve(file) } })),
  ];
}

const TLS_FLAGS = ['tls-cert', 'tls-key', 'tls-ca', 'tls-verify'] as const;

/**
 * The listeners of the quick-start flags, beside the plain --listen one: --tls-listen (mqtts),
 * --ws-listen (MQTT over WebSocket on /mqtt, named "ws") and --wss-listen (the same over TLS,
 * named "wss", with the --tls-* certificate). Like --backend for backends, they replace the
 * file's `listeners`.
 */
function quickListeners(values: FlagValues): unknown[] | undefined {
  const ws = typeof values['ws-listen'] === 'string' ? values['ws-listen'] : undefined;
  const wss = typeof values['wss-listen'] === 'string' ? values['wss-listen'] : undefined;
  const tls = tlsOptions(values, wss !== undefined);
  const listeners = [
    ...(tls && values['tls-listen'] !== undefined ? [{ name: 'tls', address: values['tls-listen'], transports: [{ use: 'tls', options: tls }] }] : []),
    ...(ws !== undefined ? [{ name: 'ws', address: ws, websocket: true }] : []),
    ...(tls && wss !== undefined ? [{ name: 'wss', address: wss, transports: [{ use: 'tls', options: tls }], websocket: true }] : []),
  ];
  return listeners.length > 0 ? listeners : undefined;
}

/**
 * The TLS quick start: --tls-listen with --tls-cert and --tls-key (plus --tls-ca for client
 * certificates) is one listener named "tls" running the tls transport, next to the plain
 * --listen one. Like --backend for backends, it replaces the file's `listeners`. Paths are made
 * absolute here, from the directory tether is started in.
 */
function tlsOptions(values: FlagValues, wss: boolean): Record<string, string> | undefined {
  const str = (flag: string): string | undefined => (typeof values[flag] === 'string' ? (values[flag] as string) : undefined);
  const listen = str('tls-listen');
  if (listen === undefined && !wss) {
    const stray = TLS_FLAGS.find((flag) => values[flag] !== undefined);
    if (stray) throw new UsageError(`--${stray} needs --tls-listen HOST:PORT or --wss-listen HOST:PORT`);
    return undefined;
  }
  const cert = str('tls-cert');
  const key = str('tls-key');
  const flag = listen === undefined ? '--wss-listen' : '--tls-listen';
  if (!cert || !key) throw new UsageError(`${flag} needs --tls-cert FILE and --tls-key FILE`);
  const ca = str('tls-ca');
  // A CA bundle is only for checking client certificates, so giving one asks for them.
  const verify = str('tls-verify') ?? (ca ? 'required' : 'none');
  if (!['none', 'optional', 'required'].includes(verify)) throw new UsageError(`--tls-verify must be one of none, optional, required; got "${verify}"`);
  if (verify !== 'none' && !ca) throw new UsageError(`--tls-verify ${verify} needs --tls-ca FILE, the CA that client certificates must chain to`);
  if (verify === 'none' && ca) throw new UsageError('--tls-ca with --tls-verify none: client certificates would never be asked for; drop one of them');
  return { cert: resolve(cert), key: resolve(key), ...(ca ? { ca: resolve(ca), verify } : {}) };
}

const STICK_TABLE = new Set(['stick-table', '@tether/strategy-stick-table']);

/**
 * `tether start --redis URL`: the quick start for several instances. Every stick table of the
 * select chain (the default chain has one) gets `store: { type: redis, url: URL }`, keeping the
 * store options the file gave (prefix, timeout, tls) and replacing where it pointed.
 */
export function withRedisStore(config: TetherConfig, url: string): TetherConfig {
  if (!/^rediss?:\/\/[^/]/.test(url)) throw new UsageError('--redis must be a URL such as redis://127.0.0.1:6379 (rediss://… for TLS; redis://user:password@host:port/db)');
  if (!config.select.some((e) => STICK_TABLE.has(e.use))) {
    throw new UsageError(`--redis puts the stick table on Redis, but the select chain [${config.select.map((e) => e.use).join(', ')}] has no stick-table`);
  }
  const select = config.select.map((entry): ChainEntry => {
    if (!STICK_TABLE.has(entry.use)) return entry;
    const { url: _url, sentinels: _sentinels, name: _name, nodes: _nodes, ...kept } = (entry.options.store ?? {}) as Record<string, unknown>;
    return { ...entry, options: { ...entry.options, store: { ...kept, type: 'redis', url } } };
  });
  return { ...config, select };
}
