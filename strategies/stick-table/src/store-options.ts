import { existsSync } from 'node:fs';
import { durationFormat, durationProblem, formatHostPort, parseDuration, parseHostPort, type HostPort } from '@tether/core';

/**
 * The stick table's `store` option: where the table lives. `memory` (the default) is this process
 * (and, with several workers, copies kept in step over IPC); `redis` is a Redis server (or
 * Sentinel-managed master, or Cluster) shared by every Tether instance, with this process's table
 * as a cache in front of it. Validated as one value so that every error names the field and the
 * cross-field rules (url OR sentinels OR nodes) are checked with the rest.
 */

export interface MemoryStoreSettings {
  readonly type: 'memory';
}

export interface RedisTlsSettings {
  /** PEM file paths. */
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly servername?: string;
  readonly rejectUnauthorized: boolean;
}

export interface RedisStoreSettings {
  readonly type: 'redis';
  /** Exactly one of these three says where Redis is. */
  readonly server?: HostPort;
  readonly sentinels?: readonly HostPort[];
  readonly nodes?: readonly HostPort[];
  /** Sentinel: the monitored master's name. */
  readonly name?: string;
  readonly db: number;
  readonly username?: string;
  readonly password?: string;
  /** Present when TLS is on (a `rediss://` URL or any `tls` option). */
  readonly tls?: RedisTlsSettings;
  readonly prefix: string;
  readonly timeoutMs: number;
}

export type StoreSettings = MemoryStoreSettings | RedisStoreSettings;

export const STORE_DEFAULT: MemoryStoreSettings = Object.freeze({ type: 'memory' });

const KEYS = ['type', 'url', 'prefix', 'timeout', 'username', 'password', 'db', 'tls', 'sentinels', 'name', 'nodes'] as const;
const TLS_KEYS = ['enabled', 'ca', 'cert', 'key', 'servername', 'rejectUnauthorized'] as const;
/** A connection must never wait longer than this on Redis, whatever is configured. */
const MAX_TIMEOUT_MS = 10_000;

/** Environment variables that supply credentials not written in the configuration. */
export const REDIS_ENV = { username: 'TETHER_REDIS_USERNAME', password: 'TETHER_REDIS_PASSWORD' } as const;

const text = (doc: string, sensitive = false) => ({ doc, format: String, default: '', ...(sensitive ? { sensitive: true } : {}) });
const stringList = (doc: string) => ({
  doc,
  format: (val: unknown) => {
    if (!Array.isArray(val) || !val.every((v) => typeof v === 'string')) throw new Error('must be a list of "host:port" strings');
  },
  default: [] as string[],
});

/**
 * The convict schema of `store` (nested: each field is checked by its own format, unknown keys
 * are refused). Rules across fields (url OR sentinels OR nodes, …) are checked by `parseStore`
 * when the table is created, with the same kind of message.
 */
export const storeSchema = {
  type: { doc: 'memory: this process; redis: shared by every instance through Redis.', format: ['memory', 'redis'], default: 'memory' },
  url: text('redis://[user:password@]host:port/db, or rediss://… for TLS (standalone Redis).', true),
  prefix: { doc: 'Prepended to every key (and the invalidation channel), so several balancers can share one Redis.', format: String, default: 'tether:' },
  timeout: {
    doc: 'Longest a connection waits on Redis; past it the rest of the chain decides and the learn is written back later.',
    format: durationFormat({ min: 1, max: MAX_TIMEOUT_MS }),
    default: '50ms',
  },
  username: text(`ACL user name (or in the URL, or ${'TETHER_REDIS_USERNAME'}).`),
  password: text('Password (or in the URL, or TETHER_REDIS_PASSWORD). Never logged.', true),
  db: { doc: 'Database number (standalone and Sentinel; or /db in the URL).', format: 'int', default: null as number | null, nullable: true },
  tls: {
    enabled: { doc: 'TLS to Redis; implied by a rediss:// URL or any other tls option (set it alone for a Cluster or Sentinel whose certificates chain to a public CA).', format: Boolean, default: false },
    ca: text('PEM file of the CA that signed the Redis server certificate.'),
    cert: text('PEM file of the client certificate (when Redis asks for one).'),
    key: text('PEM file of the client certificate\'s key.'),
    servername: text('Name to check the server certificate against (SNI), when not the host.'),
    rejectUnauthorized: { doc: 'Refuse a server certificate that does not verify.', format: Boolean, default: true },
  },
  sentinels: stringList('Sentinel addresses ("host:port"); with name, instead of url.'),
  name: text('The master name the sentinels monitor.'),
  nodes: stringList('Cluster nodes ("host:port"; a few are enough to find the rest), instead of url.'),
};

/**
 * The validated settings. `env` supplies `TETHER_REDIS_USERNAME` / `TETHER_REDIS_PASSWORD` when
 * neither the URL nor the options give them (so a password need not sit in a file).
 */
export function parseStore(value: unknown, env: Readonly<Record<string, string | undefined>>): StoreSettings {
  if (value === undefined || value === null) return STORE_DEFAULT;
  check(typeof value === 'object' && !Array.isArray(value), 'must be an object such as { type: redis, url: "redis://127.0.0.1:6379" }');
  const o = value as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !KEYS.includes(k as never));
  check(unknown.length === 0, `has unknown keys: ${unknown.join(', ')} (allowed: ${KEYS.join(', ')})`);
  const type = o.type ?? 'memory';
  check(type === 'memory' || type === 'redis', `type must be memory or redis, got ${JSON.stringify(type)}`);
  if (type === 'memory') {
    const stray = Object.keys(o).filter((k) => k !== 'type' && isSet(o[k]) && !(k === 'prefix' && o[k] === 'tether:') && !(k === 'timeout' && o[k] === '50ms'));
    check(stray.length === 0, `${stray.join(', ')}: only for type redis (type is memory)`);
    return STORE_DEFAULT;
  }
  return parseRedis(o, env);
}

function parseRedis(o: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): RedisStoreSettings {
  const str = (k: string): string | undefined => {
    const v = o[k];
    if (v === undefined || v === '') return undefined;
    check(typeof v === 'string', `${k} must be a string`);
    return v;
  };
  const url = str('url');
  const sentinels = hostList(o.sentinels, 'sentinels');
  const nodes = hostList(o.nodes, 'nodes');
  const forms = [url && 'url', sentinels && 'sentinels', nodes && 'nodes'].filter(Boolean);
  check(forms.length === 1, forms.length === 0
    ? 'type redis needs one of url (redis://host:port/db or rediss://…), sentinels (with name) or nodes (a Cluster)'
    : `give only one of url, sentinels, nodes (got ${forms.join(' and ')})`);
  const name = str('name');
  check(!sentinels || name !== undefined, 'sentinels needs name: the master name the sentinels monitor');
  check(sentinels || name === undefined, 'name is the Sentinel master name: only with sentinels');

  let fromUrl: { server: HostPort; db: number; username?: string; password?: string; tls: boolean } | undefined;
  if (url) fromUrl = parseRedisUrl(url);
  const dbOption = o.db ?? undefined;
  check(dbOption === undefined || (Number.isInteger(dbOption) && (dbOption as number) >= 0 && (dbOption as number) <= 15), 'db must be a database number from 0 to 15');
  check(!(fromUrl && dbOption !== undefined && fromUrl.db !== dbOption), `db ${String(dbOption)} disagrees with the url's /${fromUrl?.db}`);
  const db = (dbOption as number | undefined) ?? fromUrl?.db ?? 0;
  check(!nodes || db === 0, 'a Redis Cluster has only database 0');

  const username = str('username') ?? fromUrl?.username ?? nonEmpty(env[REDIS_ENV.username]);
  const password = str('password') ?? fromUrl?.password ?? nonEmpty(env[REDIS_ENV.password]);
  const prefix = o.prefix ?? 'tether:';
  check(typeof prefix === 'string' && prefix.length > 0 && prefix.length <= 128, 'prefix must be a non-empty string of at most 128 characters (e.g. "tether:")');
  const timeoutMs = parseDuration(o.timeout ?? '50ms');
  const timeoutProblem = durationProblem(o.timeout ?? '50ms', { min: 1, max: MAX_TIMEOUT_MS });
  check(timeoutProblem === undefined, `timeout ${timeoutProblem}`);
  const tls = parseTls(o.tls, fromUrl?.tls ?? false);
  return {
    type: 'redis',
    ...(fromUrl ? { server: fromUrl.server } : {}),
    ...(sentinels ? { sentinels, name: name! } : {}),
    ...(nodes ? { nodes } : {}),
    db,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tls ? { tls } : {}),
    prefix: prefix as string,
    timeoutMs: timeoutMs!,
  };
}

function parseRedisUrl(text: string): { server: HostPort; db: number; username?: string; password?: string; tls: boolean } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // The text may hold a password: never repeat it.
    throw new Error('url is not a URL: write redis://[user:password@]host:port/db or rediss://… for TLS');
  }
  check(url.protocol === 'redis:' || url.protocol === 'rediss:', `url must start with redis:// or rediss:// (got ${url.protocol}//)`);
  check(url.hostname !== '', 'url has no host');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? 6379 : Number(url.port);
  const path = url.pathname.replace(/^\//, '');
  check(path === '' || /^\d+$/.test(path), `url path must be a database number (e.g. /0), got /${path}`);
  const db = path === '' ? 0 : Number(path);
  check(db <= 15, 'url database must be from 0 to 15');
  check(url.search === '' && url.hash === '', 'url takes no query or fragment: use the store options (tls, timeout, …)');
  return {
    server: { host, port },
    db,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    tls: url.protocol === 'rediss:',
  };
}

function parseTls(value: unknown, fromUrl: boolean): RedisTlsSettings | undefined {
  if (!isSet(value)) return fromUrl ? { rejectUnauthorized: true } : undefined;
  check(typeof value === 'object' && !Array.isArray(value), 'tls must be an object { ca, cert, key, servername, rejectUnauthorized }');
  const t = value as Record<string, unknown>;
  const unknown = Object.keys(t).filter((k) => !TLS_KEYS.includes(k as never));
  check(unknown.length === 0, `tls has unknown keys: ${unknown.join(', ')} (allowed: ${TLS_KEYS.join(', ')})`);
  const file = (k: 'ca' | 'cert' | 'key'): string | undefined => {
    const v = t[k];
    if (v === undefined || v === '') return undefined;
    check(typeof v === 'string', `tls.${k} must be a file path`);
    check(existsSync(v), `tls.${k}: file ${v} does not exist`);
    return v;
  };
  const ca = file('ca');
  const cert = file('cert');
  const key = file('key');
  check((cert === undefined) === (key === undefined), 'tls.cert and tls.key go together (a client certificate and its key)');
  const servername = t.servername === '' ? undefined : t.servername;
  check(servername === undefined || typeof servername === 'string', 'tls.servername must be a host name');
  check(t.enabled === undefined || typeof t.enabled === 'boolean', 'tls.enabled must be true or false');
  const reject = t.rejectUnauthorized ?? true;
  check(typeof reject === 'boolean', 'tls.rejectUnauthorized must be true or false');
  return {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert, key: key! } : {}),
    ...(servername ? { servername: servername as string } : {}),
    rejectUnauthorized: reject as boolean,
  };
}

function hostList(value: unknown, name: string): HostPort[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value;
  check(Array.isArray(list), `${name} must be a list of "host:port"`);
  if ((list as unknown[]).length === 0) return undefined;
  return list.map((entry: unknown, i: number) => {
    check(typeof entry === 'string', `${name}[${i}] must be a "host:port" string`);
    try {
      return parseHostPort(entry as string, '127.0.0.1');
    } catch (err) {
      throw new Error(`${name}[${i}] ${(err as Error).message}`);
    }
  });
}

/**
 * Where the table lives, for logs and `tether table show`, without any secret: e.g.
 * `redis redis://127.0.0.1:6379/0 prefix tether:`, `redis sentinel mymaster@h1:26379,h2:26379/0 …`,
 * `redis cluster h1:6379,h2:6379 …`. A user name is shown; a password never.
 */
export function describeStore(s: StoreSettings): string {
  if (s.type === 'memory') return 'memory';
  const user = s.username ? `${encodeURIComponent(s.username)}@` : '';
  const where = s.server
    ? `${s.tls ? 'rediss' : 'redis'}://${user}${formatHostPort(s.server)}/${s.db}`
    : s.sentinels
      ? `sentinel ${user}${s.name}@${s.sentinels.map(formatHostPort).join(',')}/${s.db}${s.tls ? ' tls' : ''}`
      : `cluster ${user}${s.nodes!.map(formatHostPort).join(',')}${s.tls ? ' tls' : ''}`;
  return `redis ${where} prefix ${s.prefix}`;
}

/** Whether an option was given: schema defaults ('', [], null, a tls object of defaults) are not. */
function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.entries(v).some(([k, x]) => (k === 'rejectUnauthorized' ? x !== true : k === 'enabled' ? x === true : isSet(x)));
  return true;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}
