import convict, { type Schema } from 'convict';
import { isWeight, WEIGHT_MAX, WEIGHT_MIN } from '../backend/weight.ts';
import { LOG_LEVELS } from '../logger.ts';
import { parseHostPort } from '../net/address.ts';
import { durationFormat, durationProblem } from './duration.ts';
import { CHAIN_CONDITIONS } from './types.ts';
import { MAX_MQTT_MESSAGE } from '../websocket/websocket-handshake.ts';

/**
 * The one convict schema for Tether's own options. Plugins bring their own schemas for their
 * options (validated when the plugin loads). docs/configuration.md is this file, explained.
 */
export interface RawConfig {
  listen: string;
  listeners: unknown[];
  admin: { listen: string; token: string; tokenFile: string; hosts: string[] };
  metrics: { enabled: boolean; listen: string };
  backends: unknown[];
  providers: unknown[];
  key: unknown[];
  select: unknown[];
  sinks: unknown[];
  plugins: string[];
  sniff: { maxBytes: number; timeout: string | number; strict: boolean };
  timeouts: { connect: string | number; client: string | number; server: string | number };
  retries: number;
  embedded: { brokers: number };
  healthCheck: {
    type: string; interval: string | number; timeout: string | number; rise: number; fall: number;
    clientId: string; username: string; password: string; onMarkedDown: string;
  };
  log: { level: string };
  workers: number | 'auto';
  cluster: { scheduling: string };
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const hostPort = (val: unknown): void => {
  assert(typeof val === 'string', 'must be a "host:port" string');
  parseHostPort(val);
};

const optionalHostPort = (val: unknown): void => {
  if (val === '' || val === null || val === undefined) return;
  hostPort(val);
};

const duration = durationFormat();

/** A deadline that must be able to pass: 0 would fail every connection or check. */
const positiveDuration = durationFormat({ min: 1 });

const sniffBytes = (val: unknown): void => {
  assert(Number.isInteger(val) && (val as number) >= 64, 'must be a whole number of bytes, at least 64 (a CONNECT alone takes 14 or more)');
};

/** A positive whole number of worker processes, or `auto` (one per CPU). */
const workers = (val: unknown): void => {
  assert(val === 'auto' || (Number.isInteger(val) && (val as number) >= 1), 'must be a whole number of worker processes, at least 1, or "auto" (one per CPU)');
};

/** Host names the admin API answers to (the Host header), besides its own address. */
const hostNames = (val: unknown): void => {
  assert(Array.isArray(val), 'must be a list of host names');
  val.forEach((name, i) => {
    assert(typeof name === 'string' && /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(name), `[${i}] must be a host name such as lb1.example.net (no port, no scheme); got ${JSON.stringify(name)}`);
  });
};

/** A bearer token travels in an HTTP header: visible ASCII, no spaces, and long enough not to be guessed. */
export const ADMIN_TOKEN_MIN_LENGTH = 16;
export function checkAdminToken(token: string): void {
  assert(/^[\x21-\x7e]*$/.test(token), 'must be printable ASCII without spaces (it is sent in an HTTP header)');
  assert(token.length >= ADMIN_TOKEN_MIN_LENGTH, `must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters (for example: openssl rand -hex 32)`);
}

const adminToken = (val: unknown): void => {
  assert(typeof val === 'string', 'must be a string');
  if (val !== '') checkAdminToken(val);
};

const splitList = (val: unknown): unknown =>
  typeof val === 'string' ? val.split(',').map((s) => s.trim()).filter(Boolean) : val;

/** A chain is a list of plugin names, or of `{ use, options, when }` objects. */
const chain = (val: unknown): void => {
  assert(Array.isArray(val), 'must be a list of plugin names or { use, options } objects');
  val.forEach((entry, i) => {
    if (typeof entry === 'string') return assert(entry.length > 0, `[${i}] must not be empty`);
    assert(entry && typeof entry === 'object', `[${i}] must be a plugin name or a { use, options } object`);
    const { use, options, when, ...rest } = entry as Record<string, unknown>;
    assert(typeof use === 'string' && use.length > 0, `[${i}].use must name a plugin`);
    assert(options === undefined || (typeof options === 'object' && options !== null), `[${i}].options must be an object`);
    assert(when === undefined || CHAIN_CONDITIONS.includes(when as never), `[${i}].when must be one of ${CHAIN_CONDITIONS.join(', ')}`);
    assert(Object.keys(rest).length === 0, `[${i}] has unknown keys: ${Object.keys(rest).join(', ')} (allowed: use, options, when)`);
  });
};

/** `websocket: true` or `{ path, protocols, maxHeaderBytes }`: the listener speaks MQTT over WebSocket. */
const websocketOptions = (val: unknown, at: string): void => {
  if (val === true) return;
  assert(val !== null && typeof val === 'object' && !Array.isArray(val), `${at}.websocket must be true or a { path, protocols, maxHeaderBytes } object`);
  const { path, protocols, maxHeaderBytes, maxMessageBytes, ...rest } = val as Record<string, unknown>;
  assert(Object.keys(rest).length === 0, `${at}.websocket has unknown keys: ${Object.keys(rest).join(', ')} (allowed: path, protocols, maxHeaderBytes, maxMessageBytes)`);
  assert(maxMessageBytes === undefined || (Number.isInteger(maxMessageBytes) && (maxMessageBytes as number) >= 1024 && (maxMessageBytes as number) <= MAX_MQTT_MESSAGE), `${at}.websocket.maxMessageBytes must be a whole number of bytes from 1024 to ${MAX_MQTT_MESSAGE} (MQTT's largest packet)`);
  assert(path === undefined || (typeof path === 'string' && path.startsWith('/') && !/\s/.test(path)), `${at}.websocket.path must start with "/" and hold no spaces`);
  assert(protocols === undefined || (Array.isArray(protocols) && protocols.length > 0 && protocols.every((p) => typeof p === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(p))), `${at}.websocket.protocols must be a non-empty list of subprotocol names`);
  assert(maxHeaderBytes === undefined || (Number.isInteger(maxHeaderBytes) && (maxHeaderBytes as number) >= 512 && (maxHeaderBytes as number) <= 65536), `${at}.websocket.maxHeaderBytes must be a whole number from 512 to 65536`);
};

/** A listener is `{ name?, address, transports?, websocket? }`; transports is a chain like `select`. */
const listeners = (val: unknown): void => {
  assert(Array.isArray(val), 'must be a list of { name, address, transports } objects');
  const names = new Set<string>();
  val.forEach((entry, i) => {
    assert(entry && typeof entry === 'object' && !Array.isArray(entry), `[${i}] must be a { name, address, transports } object`);
    const { name, address, transports, websocket, ...rest } = entry as Record<string, unknown>;
    assert(Object.keys(rest).length === 0, `[${i}] has unknown keys: ${Object.keys(rest).join(', ')} (allowed: name, address, transports, websocket)`);
    if (websocket !== undefined && websocket !== false) websocketOptions(websocket, `[${i}]`);
    assert(typeof address === 'string', `[${i}].address must be a "host:port" string`);
    try {
      parseHostPort(address);
    } catch (err) {
      throw new Error(`[${i}].address ${(err as Error).message}`);
    }
    const id = name ?? address;
    assert(typeof id === 'string' && id.length > 0 && id !== 'main', `[${i}].name must be a non-empty string other than "main"`);
    assert(!names.has(id), `[${i}].name "${id}" is used twice`);
    names.add(id);
    if (transports !== undefined) {
      try {
        chain(transports);
      } catch (err) {
        throw new Error(`[${i}].transports${(err as Error).message}`);
      }
    }
  });
};

export const BACKEND_STATES = ['ready', 'drain', 'maint'] as const;
export const CHECK_TYPES = ['none', 'tcp', 'mqtt'] as const;
export const PROXY_VERSIONS = ['none', 'v1', 'v2'] as const;

/** A backend is `[name=]host:port` or `{ name, address, weight, state, sendProxy }`. */
const backends = (val: unknown): void => {
  assert(Array.isArray(val), 'must be a list of "[name=]host:port" strings or backend objects');
  const names = new Set<string>();
  val.forEach((entry, i) => {
    const at = `[${i}]`;
    let name: unknown;
    let address: unknown;
    if (typeof entry === 'string') {
      const eq = entry.indexOf('=');
      [name, address] = eq > 0 ? [entry.slice(0, eq), entry.slice(eq + 1)] : [entry, entry];
    } else {
      assert(entry && typeof entry === 'object', `${at} must be "[name=]host:port" or an object`);
      const { name: n, address: a, weight, state, sendProxy, maxconn, connectTimeout, check, websocket, backup, ...rest } = entry as Record<string, unknown>;
      assert(Object.keys(rest).length === 0, `${at} has unknown keys: ${Object.keys(rest).join(', ')} (allowed: name, address, weight, state, sendProxy, maxconn, connectTimeout, check, websocket, backup)`);
      assert(backup === undefined || typeof backup === 'boolean', `${at}.backup must be true or false`);
      if (websocket !== undefined) {
        assert(websocket !== null && typeof websocket === 'object' && !Array.isArray(websocket), `${at}.websocket must be a { path } object`);
        const { path, ...other } = websocket as Record<string, unknown>;
        assert(Object.keys(other).length === 0, `${at}.websocket has unknown keys: ${Object.keys(other).join(', ')} (allowed: path)`);
        assert(path === undefined || (typeof path === 'string' && path.startsWith('/') && !/\s/.test(path)), `${at}.websocket.path must start with "/" and hold no spaces`);
        assert(check !== 'mqtt', `${at}.check mqtt cannot check a WebSocket endpoint; use tcp or none`);
      }
      assert(maxconn === undefined || (Number.isInteger(maxconn) && (maxconn as number) >= 0), `${at}.maxconn must be a whole number (0 = no limit)`);
      const timeoutProblem = connectTimeout === undefined ? undefined : durationProblem(connectTimeout);
      assert(timeoutProblem === undefined, `${at}.connectTimeout ${timeoutProblem}`);
      assert(check === undefined || CHECK_TYPES.includes(check as never), `${at}.check must be one of ${CHECK_TYPES.join(', ')}`);
      assert(weight === undefined || isWeight(weight), `${at}.weight must be an integer from ${WEIGHT_MIN} to ${WEIGHT_MAX}`);
      assert(state === undefined || BACKEND_STATES.includes(state as never), `${at}.state must be one of ${BACKEND_STATES.join(', ')}`);
      assert(sendProxy === undefined || PROXY_VERSIONS.includes(sendProxy as never), `${at}.sendProxy must be one of ${PROXY_VERSIONS.join(', ')}`);
      address = a;
      name = n ?? a;
    }
    assert(typeof address === 'string', `${at}.address must be a "host:port" string`);
    try {
      parseHostPort(address);
    } catch (err) {
      throw new Error(`${at}.address ${(err as Error).message}`);
    }
    assert(typeof name === 'string' && name.length > 0, `${at}.name must be a non-empty string`);
    assert(!names.has(name), `${at}.name "${name}" is used twice; backend names must be unique`);
    names.add(name);
  });
};

let registered = false;

/** Registers the formats above with convict (once per process); env strings are split on commas. */
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  convict.addFormats({
    'host-port': { validate: hostPort },
    'optional-host-port': { validate: optionalHostPort },
    'duration-text': { validate: duration },
    'positive-duration': { validate: positiveDuration },
    workers: { validate: workers, coerce: (val: unknown) => (typeof val === 'string' && /^\d+$/.test(val) ? Number(val) : val) },
    'sniff-bytes': { validate: sniffBytes, coerce: (val: unknown) => (typeof val === 'string' && /^\d+$/.test(val) ? Number(val) : val) },
    'plugin-chain': { validate: chain, coerce: splitList },
    'host-names': { validate: hostNames, coerce: splitList },
    'admin-token': { validate: adminToken },
    'backend-list': { validate: backends, coerce: splitList },
    'listener-list': { validate: listeners, coerce: (val: unknown) => (typeof val === 'string' ? (JSON.parse(val) as unknown) : val) },
  });
}

export const configSchema: Schema<RawConfig> = {
  listen: {
    doc: 'Address of the plain MQTT listener (named "main"), as host:port ([::1]:port for IPv6); empty for none. Use 0.0.0.0:1883 to serve other hosts.',
    format: 'optional-host-port',
    default: '127.0.0.1:1883',
    env: 'TETHER_LISTEN',
  },
  listeners: {
    doc: 'More listeners, each { name, address, transports, websocket }: transports is a chain run on every accepted connection before its CONNECT is read (proxy-in, tls); websocket (true or { path: "/mqtt", protocols: ["mqtt", "mqttv3.1"], maxHeaderBytes: 8192, maxMessageBytes: 1048576 }) makes it a WebSocket listener (MQTT over ws://, or wss:// after a tls transport).',
    format: 'listener-list',
    default: [],
    env: 'TETHER_LISTENERS',
  },
  admin: {
    // A config file may also say `admin: "host:port"`: load-config.ts reads it as admin.listen.
    listen: {
      doc: 'Address of the admin HTTP API (stick table, stats, backends, runtime control) as host:port; empty turns it off. A non-loopback address needs a token.',
      format: 'optional-host-port',
      default: '',
      env: 'TETHER_ADMIN',
    },
    token: {
      doc: 'Bearer token every admin request must carry (Authorization: Bearer TOKEN), at least 16 characters; required when admin.listen is not a loopback address. Empty: no token on loopback.',
      format: 'admin-token',
      default: '',
      env: 'TETHER_ADMIN_TOKEN',
      sensitive: true,
    },
    tokenFile: {
      doc: 'File holding the admin token (its first line; relative to the config file), instead of admin.token.',
      format: String,
      default: '',
      env: 'TETHER_ADMIN_TOKEN_FILE',
    },
    hosts: {
      doc: 'Host names the admin API also answers to (the Host header), e.g. a DNS name of this machine; its own address and, on loopback, localhost always work.',
      format: 'host-names',
      default: [],
      env: 'TETHER_ADMIN_HOSTS',
    },
  },
  metrics: {
    enabled: {
      doc: 'Prometheus metrics (GET /metrics on the admin API, and on metrics.listen) and the check of each broker\'s CONNACK they count; false turns both off.',
      format: Boolean,
      default: true,
      env: 'TETHER_METRICS_ENABLED',
    },
    listen: {
      doc: 'Address of a read-only HTTP listener that serves only GET /metrics, as host:port (host defaults to 127.0.0.1); empty for none. Unlike the admin API it may face a Prometheus on another host.',
      format: 'optional-host-port',
      default: '',
      env: 'TETHER_METRICS_LISTEN',
    },
  },
  backends: {
    doc: 'Brokers to balance over: "[name=]host:port" strings or { name, address, weight, state, sendProxy } objects. Empty (and no providers) starts two embedded brokers.',
    format: 'backend-list',
    default: [],
    env: 'TETHER_BACKENDS',
  },
  providers: {
    doc: 'Backend providers (discovery), each a plugin name or { use, options }: dns (A/AAAA or SRV records, re-resolved), file (a watched YAML/JSON list), or a third-party provider. Their backends join the static `backends`.',
    format: 'plugin-chain',
    default: [],
    env: 'TETHER_PROVIDERS',
  },
  key: {
    doc: 'Key extractor chain, in order; the first non-empty key wins. Built-ins: client-id, username.',
    format: 'plugin-chain',
    default: ['client-id'],
    env: 'TETHER_KEY',
  },
  select: {
    doc: 'Strategy chain, in order; the first strategy that does not abstain chooses. The last one must answer every client.',
    format: 'plugin-chain',
    default: ['stick-table', 'least-connections'],
    env: 'TETHER_SELECT',
  },
  sinks: {
    doc: 'Sink chain applied to each upstream connection before the CONNECT is replayed.',
    format: 'plugin-chain',
    default: ['proxy-protocol'],
    env: 'TETHER_SINKS',
  },
  plugins: {
    doc: 'Extra plugin modules to load: paths (relative to the config file) or package names. Their plugins are then usable by name.',
    format: Array,
    default: [],
    env: 'TETHER_PLUGINS',
  },
  sniff: {
    maxBytes: {
      doc: 'Largest first packet (CONNECT) accepted, in bytes (at least 64); a larger one is rejected as soon as its header says so.',
      format: 'sniff-bytes',
      default: 65536,
      env: 'TETHER_SNIFF_MAX_BYTES',
    },
    timeout: {
      doc: 'Time a client has to send its complete CONNECT (like HAProxy tcp-request inspect-delay).',
      format: 'positive-duration',
      default: '5s',
      env: 'TETHER_SNIFF_TIMEOUT',
    },
    strict: {
      doc: 'Also refuse a CONNECT that parses but is malformed by the MQTT specification: strings that are not well-formed UTF-8 or hold U+0000, bytes after the last field, variable byte integers not in their shortest form, unknown or repeated MQTT 5 properties. false: only what mqtt-packet refuses (HAProxy\'s level).',
      format: Boolean,
      default: true,
      env: 'TETHER_SNIFF_STRICT',
    },
  },
  timeouts: {
    connect: {
      doc: 'Time to establish the TCP connection to a backend before trying another (HAProxy timeout connect).',
      format: 'positive-duration',
      default: '5s',
      env: 'TETHER_TIMEOUT_CONNECT',
    },
    client: {
      doc: 'Idle time after which a spliced connection is closed, client side (HAProxy timeout client); 0 disables it.',
      format: 'duration-text',
      default: '600s',
      env: 'TETHER_TIMEOUT_CLIENT',
    },
    server: {
      doc: 'Idle time after which a spliced connection is closed, broker side (HAProxy timeout server); 0 disables it.',
      format: 'duration-text',
      default: '600s',
      env: 'TETHER_TIMEOUT_SERVER',
    },
  },
  retries: {
    doc: 'How many other backends to try when connecting to the chosen one fails (HAProxy retries + option redispatch).',
    format: 'nat',
    default: 1,
    env: 'TETHER_RETRIES',
  },
  embedded: {
    brokers: {
      doc: 'Number of embedded aedes brokers started on loopback when no backends are configured.',
      format: 'nat',
      default: 2,
      env: 'TETHER_EMBEDDED_BROKERS',
    },
  },
  healthCheck: {
    type: {
      doc: 'Health check for every backend (a backend may override it with `check`): none, tcp (connect) or mqtt (CONNECT, expect CONNACK 0, DISCONNECT).',
      format: [...CHECK_TYPES],
      default: 'none',
      env: 'TETHER_HEALTH_CHECK',
    },
    interval: { doc: 'Time between two checks of a backend (HAProxy inter).', format: 'positive-duration', default: '2s', env: 'TETHER_HEALTH_CHECK_INTERVAL' },
    timeout: { doc: 'Time one check may take (HAProxy timeout check).', format: 'positive-duration', default: '1s', env: 'TETHER_HEALTH_CHECK_TIMEOUT' },
    rise: { doc: 'Consecutive passed checks that bring a down backend up (HAProxy rise).', format: 'nat', default: 2, env: 'TETHER_HEALTH_CHECK_RISE' },
    fall: { doc: 'Consecutive failed checks that take a backend down (HAProxy fall).', format: 'nat', default: 3, env: 'TETHER_HEALTH_CHECK_FALL' },
    clientId: { doc: 'Client identifier of the mqtt check.', format: String, default: 'tether-health-check', env: 'TETHER_HEALTH_CHECK_CLIENT_ID' },
    username: { doc: 'User name of the mqtt check (empty: none).', format: String, default: '', env: 'TETHER_HEALTH_CHECK_USERNAME' },
    password: { doc: 'Password of the mqtt check (empty: none).', format: String, default: '', env: 'TETHER_HEALTH_CHECK_PASSWORD', sensitive: true },
    onMarkedDown: {
      doc: 'What happens to a backend\'s live connections when it is marked down: keep them, or close them (HAProxy on-marked-down shutdown-sessions).',
      format: ['keep', 'shutdown-sessions'],
      default: 'keep',
      env: 'TETHER_HEALTH_CHECK_ON_MARKED_DOWN',
    },
  },
  workers: {
    doc: 'Worker processes sharing the listeners (Node cluster), so all cores are used; "auto" starts one per CPU. 1 runs everything in one process.',
    format: 'workers',
    default: 1,
    env: 'TETHER_WORKERS',
  },
  cluster: {
    scheduling: {
      doc: 'With workers above 1, who spreads new connections: os (every worker accepts on the shared socket and the kernel picks: the least CPU per connection, a spread that varies) or rr (the primary accepts each connection and hands it to the workers in turn: an even spread, for the primary\'s CPU).',
      format: ['rr', 'os'],
      default: 'os',
      env: 'TETHER_CLUSTER_SCHEDULING',
    },
  },
  log: {
    level: {
      doc: 'Log level.',
      format: [...LOG_LEVELS],
      default: 'info',
      env: 'TETHER_LOG_LEVEL',
    },
  },
};
