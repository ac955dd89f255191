import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, extname, resolve } from 'node:path';
import convict from 'convict';
import YAML from 'yaml';
import { ConfigError, describe } from '../errors.ts';
import { parseHostPort } from '../net/address.ts';
import type { BackendDefinition, HealthCheckType } from '../backend/backend-pool.ts';
import { toAdminConfig, type AdminConfig } from './admin-config.ts';
import { parseDuration } from './duration.ts';
import { configSchema, registerFormats, type RawConfig } from './schema.ts';
import { WEBSOCKET_DEFAULTS, type WebSocketListenerOptions } from '../websocket/websocket-handshake.ts';
import type { ChainCondition, ChainEntry, ListenerConfig, TetherConfig } from './types.ts';

export interface ConfigSources {
  /** A JSON or YAML file (by extension: .json, .yaml, .yml). */
  readonly file?: string;
  /** Environment to read TETHER_* variables from; defaults to process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Values from command-line flags, by dotted schema path; they win over file and environment. */
  readonly overrides?: Readonly<Record<string, unknown>>;
  /**
   * A last change to the validated configuration, for command-line flags that rewrite a chain
   * entry's options whatever chain the file gives (`--redis` puts the stick table on Redis).
   */
  readonly adjust?: (config: TetherConfig) => TetherConfig;
}

/** Options whose value must be a list; convict would silently merge a mapping into the default. */
const LIST_OPTIONS = ['backends', 'providers', 'key', 'select', 'sinks', 'plugins', 'listeners'] as const;

/** Defaults < file < TETHER_* environment < command-line flags; every error reported at once. */
export function loadConfig(sources: ConfigSources = {}): TetherConfig {
  registerFormats();
  const conf = convict(configSchema, { env: sources.env ?? process.env, args: [] });
  let baseDir = process.cwd();
  if (sources.file) {
    const file = resolve(sources.file);
    if (!existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
    if (!['.json', '.yaml', '.yml'].includes(extname(file))) {
      throw new ConfigError(`config file ${file}: use a .json, .yaml or .yml file`);
    }
    conf.load(readConfigFile(file));
    baseDir = dirname(file);
  }
  for (const [path, value] of Object.entries(sources.overrides ?? {})) {
    // `admin: "host:port"` (the option's first shape, and --admin) is admin.listen.
    if (value !== undefined) conf.set(path === 'admin' && typeof value === 'string' ? 'admin.listen' : path, value);
  }
  try {
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    const where = sources.file ? ` in ${sources.file}` : '';
    throw new ConfigError(`invalid configuration${where}:\n  ${describe(err).split('\n').join('\n  ')}`, { cause: err });
  }
  const raw = conf.getProperties() as RawConfig;
  const where = sources.file ? ` in ${sources.file}` : '';
  if (!raw.metrics.enabled && raw.metrics.listen) {
    throw new ConfigError(`invalid configuration${where}:\n  metrics.listen is set (${raw.metrics.listen}) but metrics.enabled is false: drop one of them`);
  }
  let admin: AdminConfig | undefined;
  try {
    admin = toAdminConfig(raw.admin, baseDir);
  } catch (err) {
    throw new ConfigError(`invalid configuration${where}:\n  ${describe(err)}`, { cause: err });
  }
  const config = normalize(raw, admin, baseDir);
  return sources.adjust ? Object.freeze(sources.adjust(config)) : config;
}

function readConfigFile(file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    doc = extname(file) === '.json' ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} could not be read: ${describe(err)}`, { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${file}: the top level must be a mapping of options`);
  const options = doc as Record<string, unknown>;
  const notLists = LIST_OPTIONS.filter((k) => k in options && !Array.isArray(options[k]));
  if (notLists.length > 0) {
    throw new ConfigError(`invalid configuration in ${file}:\n  ${notLists.map((k) => `${k}: must be a list (in YAML, start each entry with "- "); found ${typeof options[k] === 'object' ? 'a mapping' : JSON.stringify(options[k])}`).join('\n  ')}`);
  }
  // The admin option was first a plain address; that shape stays valid (admin.listen).
  if (typeof options.admin === 'string') return { ...options, admin: { listen: options.admin } };
  return options;
}

function normalize(raw: RawConfig, admin: AdminConfig | undefined, baseDir: string): TetherConfig {
  return Object.freeze({
    listen: raw.listen ? parseHostPort(raw.listen) : undefined,
    listeners: [
      ...(raw.listen ? [{ name: 'main', address: parseHostPort(raw.listen), transports: [] }] : []),
      ...raw.listeners.map(toListener),
    ],
    admin,
    metrics: { enabled: raw.metrics.enabled, listen: raw.metrics.listen ? parseHostPort(raw.metrics.listen, '127.0.0.1') : undefined },
    backends: raw.backends.map(toBackend),
    providers: raw.providers.map(toChainEntry),
    key: raw.key.map(toChainEntry),
    select: raw.select.map(toChainEntry),
    sinks: raw.sinks.map(toChainEntry),
    plugins: raw.plugins,
    sniff: { maxBytes: raw.sniff.maxBytes, timeoutMs: parseDuration(raw.sniff.timeout)!, strict: raw.sniff.strict },
    timeouts: {
      connectMs: parseDuration(raw.timeouts.connect)!,
      clientMs: parseDuration(raw.timeouts.client)!,
      serverMs: parseDuration(raw.timeouts.server)!,
    },
    retries: raw.retries,
    embedded: { brokers: raw.embedded.brokers },
    healthCheck: {
      type: raw.healthCheck.type as HealthCheckType,
      intervalMs: parseDuration(raw.healthCheck.interval)!,
      timeoutMs: parseDuration(raw.healthCheck.timeout)!,
      rise: Math.max(1, raw.healthCheck.rise),
      fall: Math.max(1, raw.healthCheck.fall),
      clientId: raw.healthCheck.clientId,
      username: raw.healthCheck.username,
      password: raw.healthCheck.password,
      onMarkedDown: raw.healthCheck.onMarkedDown as 'keep' | 'shutdown-sessions',
    },
    log: { level: raw.log.level },
    workers: raw.workers === 'auto' ? availableParallelism() : raw.workers,
    cluster: { scheduling: raw.cluster.scheduling as 'rr' | 'os' },
    baseDir,
  });
}

function toListener(entry: unknown): ListenerConfig {
  const { name, address, transports, websocket } = entry as { name?: string; address: string; transports?: unknown[]; websocket?: boolean | Partial<WebSocketListenerOptions> };
  const listener = { name: name ?? address, address: parseHostPort(address), transports: (transports ?? []).map(toChainEntry) };
  if (websocket === undefined || websocket === false) return listener;
  const ws = websocket === true ? {} : websocket;
  return { ...listener, websocket: Object.freeze({ ...WEBSOCKET_DEFAULTS, ...ws }) };
}

function toChainEntry(entry: unknown): ChainEntry {
  if (typeof entry === 'string') return { use: entry, options: {}, when: 'always' };
  const { use, options, when } = entry as { use: string; options?: Record<string, unknown>; when?: ChainCondition };
  return { use, options: options ?? {}, when: when ?? 'always' };
}

function toBackend(entry: unknown): BackendDefinition {
  if (typeof entry === 'string') {
    const eq = entry.indexOf('=');
    const [id, address] = eq > 0 ? [entry.slice(0, eq), entry.slice(eq + 1)] : [entry, entry];
    return { id, ...parseHostPort(address), weight: 1, state: 'ready', sendProxy: 'none' };
  }
  const e = entry as {
    name?: string; address: string; weight?: number; state?: 'ready' | 'drain' | 'maint'; sendProxy?: 'none' | 'v1' | 'v2';
    maxconn?: number; connectTimeout?: string | number; check?: HealthCheckType; websocket?: { path?: string }; backup?: boolean;
  };
  return {
    id: e.name ?? e.address,
    ...parseHostPort(e.address),
    weight: e.weight ?? 1,
    state: e.state ?? 'ready',
    sendProxy: e.sendProxy ?? 'none',
    maxconn: e.maxconn ?? 0,
    ...(e.connectTimeout !== undefined ? { connectTimeoutMs: parseDuration(e.connectTimeout)! } : {}),
    ...(e.check !== undefined ? { check: e.check } : {}),
    ...(e.websocket !== undefined ? { websocketPath: e.websocket.path ?? WEBSOCKET_DEFAULTS.path } : {}),
    ...(e.backup === true ? { backup: true } : {}),
  };
}
