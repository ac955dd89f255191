import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.ts';
import { BACKEND_STATES, configSchema, PROXY_VERSIONS } from '../../src/config/schema.ts';
import { ConfigError } from '../../src/errors.ts';
import { LOG_LEVELS } from '../../src/logger.ts';

// The schema's validators are exercised through loadConfig, the way users meet them: every message
// must name the option path (and, for enumerations, the allowed values) so the user can fix it.

function errorFor(overrides: Record<string, unknown>): string {
  try {
    loadConfig({ env: {}, overrides });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('TETHER_ERR_CONFIG');
    return (err as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(overrides)} to be rejected`);
}

describe('configSchema', () => {
  it('declares an environment variable for every option, all prefixed TETHER_', () => {
    const envs: string[] = [];
    const walk = (node: Record<string, unknown>): void => {
      for (const value of Object.values(node)) {
        if (value && typeof value === 'object' && 'default' in value) envs.push((value as unknown as { env: string }).env);
        else if (value && typeof value === 'object') walk(value as Record<string, unknown>);
      }
    };
    walk(configSchema as unknown as Record<string, unknown>);
    // listen, listeners, 4 admin, 2 metrics, backends, providers, key, select, sinks, plugins, 3 sniff, 3 timeouts,
    // retries, embedded, 9 healthCheck, log, workers, cluster.scheduling.
    expect(envs.length).toBe(34);
    for (const env of envs) expect(env).toMatch(/^TETHER_[A-Z_]+$/);
    expect(new Set(envs).size).toBe(envs.length);
  });
});

describe('config validation messages', () => {
  it.each([
    ['listen without a port', { listen: 'localhost' }, /listen: "localhost" is not host:port/],
    ['listen with a port above 65535', { listen: '127.0.0.1:70000' }, /listen: .*port above 65535/],
    ['listen with a non-numeric port', { listen: '127.0.0.1:http' }, /listen: .*no numeric port/],
    ['listen with a bare IPv6 address', { listen: '::1:1883' }, /listen: .*write IPv6 addresses as \[addr\]:port/],
    ['listen with an invalid bracketed IPv6 address', { listen: '[zz::1]:1883' }, /listen: .*invalid IPv6 address/],
    ['a non-string listen', { listen: 1883 }, /listen: must be a "host:port" string/],
    ['admin without a port', { admin: 'localhost' }, /admin\.listen: "localhost" is not host:port/],
    ['an admin token with a space', { 'admin.token': 'abcdefgh ijklmnopq' }, /admin\.token: must be printable ASCII without spaces/],
    ['a short admin token', { 'admin.token': 'short' }, /admin\.token: must be at least 16 characters \(for example: openssl rand -hex 32\)/],
    ['an admin host name with a port', { 'admin.hosts': ['lb1:9999'] }, /admin\.hosts: \[0\] must be a host name such as lb1\.example\.net/],
    ['a sniff timeout that is not a duration', { 'sniff.timeout': 'soon' }, /sniff\.timeout: must be a duration/],
    ['a connect timeout with an unknown unit', { 'timeouts.connect': '5w' }, /timeouts\.connect: must be a duration/],
    ['negative retries', { retries: -1 }, /retries: must be a positive integer/],
    ['fractional embedded brokers', { 'embedded.brokers': 1.5 }, /embedded\.brokers: must be a positive integer/],
    ['an unknown option', { bogus: 1 }, /'bogus' not declared in the schema/],
  ])('rejects %s, naming the option', (_name, overrides, message) => {
    expect(errorFor(overrides)).toMatch(message);
  });

  it('names the allowed log levels', () => {
    const message = errorFor({ 'log.level': 'loud' });
    expect(message).toMatch(/log\.level:/);
    for (const level of LOG_LEVELS) expect(message).toContain(`"${level}"`);
  });

  it('reports every invalid option at once, not only the first', () => {
    const message = errorFor({ retries: -1, 'timeouts.connect': 'soon', 'log.level': 'loud' });
    expect(message).toMatch(/retries:/);
    expect(message).toMatch(/timeouts\.connect:/);
    expect(message).toMatch(/log\.level:/);
  });
});

describe('backends validation', () => {
  it.each([
    ['a string without a port', ['broker'], /backends: \[0\]\.address "broker" is not host:port/],
    ['a named string without a port', ['a=127.0.0.1:1', 'b=broker'], /backends: \[1\]\.address "broker" is not host:port/],
    ['a bare IPv6 address', ['::1:1883'], /\[0\]\.address .*\[addr\]:port/],
    ['a number', [1883], /\[0\] must be "\[name=\]host:port" or an object/],
    ['an object without address', [{ name: 'a' }], /\[0\]\.address must be a "host:port" string/],
    ['an object with an unknown key', [{ address: '127.0.0.1:1', port: 1 }], /\[0\] has unknown keys: port \(allowed: name, address, weight, state, sendProxy, maxconn, connectTimeout, check, websocket, backup\)/],
    ['weight 0', [{ address: '127.0.0.1:1', weight: 0 }], /\[0\]\.weight must be an integer from 1 to 256/],
    ['weight 257', [{ address: '127.0.0.1:1', weight: 257 }], /\[0\]\.weight must be an integer from 1 to 256/],
    ['a fractional weight', [{ address: '127.0.0.1:1', weight: 1.5 }], /\[0\]\.weight must be an integer from 1 to 256/],
    ['an empty name', [{ name: '', address: '127.0.0.1:1' }], /\[0\]\.name must be a non-empty string/],
    ['a non-list', 'nope', /backends: .*is not host:port/],
    ['a websocket path without a slash', [{ address: '127.0.0.1:1', websocket: { path: 'mqtt' } }], /\[0\]\.websocket\.path must start with "\/"/],
    ['a websocket backend with the mqtt check', [{ address: '127.0.0.1:1', websocket: {}, check: 'mqtt' }], /\[0\]\.check mqtt cannot check a WebSocket endpoint/],
    ['an unknown websocket key', [{ address: '127.0.0.1:1', websocket: { url: 'x' } }], /\[0\]\.websocket has unknown keys: url \(allowed: path\)/],
  ])('rejects %s', (_name, backends, message) => {
    expect(errorFor({ backends })).toMatch(message);
  });

  it('names the allowed backend states', () => {
    const message = errorFor({ backends: [{ address: '127.0.0.1:1', state: 'down' }] });
    expect(message).toContain(`[0].state must be one of ${BACKEND_STATES.join(', ')}`);
    // `down` is a runtime state (health checks), not something a config may ask for.
    expect(BACKEND_STATES).toEqual(['ready', 'drain', 'maint']);
  });

  it('names the allowed PROXY protocol versions', () => {
    const message = errorFor({ backends: [{ address: '127.0.0.1:1', sendProxy: 'v3' }] });
    expect(message).toContain(`[0].sendProxy must be one of ${PROXY_VERSIONS.join(', ')}`);
  });

  it.each([
    ['two named strings', ['a=127.0.0.1:1', 'a=127.0.0.1:2'], '[1].name "a"'],
    ['a string and an object', ['a=127.0.0.1:1', { name: 'a', address: '127.0.0.1:2' }], '[1].name "a"'],
    ['two unnamed entries with the same address', ['127.0.0.1:1', { address: '127.0.0.1:1' }], '[1].name "127.0.0.1:1"'],
  ])('rejects duplicate backend names: %s', (_name, backends, where) => {
    const message = errorFor({ backends });
    expect(message).toContain(where);
    expect(message).toMatch(/used twice; backend names must be unique/);
  });

  it('accepts the same address under two names (two listeners of one broker)', () => {
    const { backends } = loadConfig({ env: {}, overrides: { backends: ['a=127.0.0.1:1', 'b=127.0.0.1:1'] } });
    expect(backends.map((b) => b.id)).toEqual(['a', 'b']);
  });

  it('splits a comma-separated environment list and validates each entry', () => {
    expect(() => loadConfig({ env: { TETHER_BACKENDS: 'a=127.0.0.1:1,a=127.0.0.1:2' } })).toThrow(/\[1\]\.name "a" is used twice/);
  });
});

describe('plugin chain validation', () => {
  it.each([
    ['key', 'an empty name', [''], /key: \[0\] must not be empty/],
    ['select', 'an object without use', [{ options: {} }], /select: \[0\]\.use must name a plugin/],
    ['select', 'an empty use', [{ use: '' }], /select: \[0\]\.use must name a plugin/],
    ['sinks', 'options that are not an object', [{ use: 'proxy-protocol', options: 'v2' }], /sinks: \[0\]\.options must be an object/],
    ['select', 'null options', [{ use: 'stick-table', options: null }], /select: \[0\]\.options must be an object/],
    ['select', 'an unknown key', ['least-connections', { use: 'x', opts: {} }], /select: \[1\] has unknown keys: opts \(allowed: use, options, when\)/],
    ['key', 'a number', [42], /key: \[0\] must be a plugin name or a \{ use, options \} object/],
    // convict treats an object set on a path as nested options, so the message names `key.use`.
    ['key', 'an object instead of a list', { use: 'client-id' }, /'key\.use' not declared/],
  ])('rejects in %s %s', (path, _name, value, message) => {
    expect(errorFor({ [path]: value })).toMatch(message);
  });
});

describe('limits that would stop all traffic', () => {
  it.each([
    ['timeouts.connect', 0],
    ['sniff.timeout', '0s'],
    ['healthCheck.timeout', 0],
    ['healthCheck.interval', '0ms'],
  ])('refuses %s = %j (every connection or check would fail at once)', (path, value) => {
    expect(errorFor({ [path]: value })).toMatch(new RegExp(`${path.replace('.', '\\.')}: must be a duration of at least 1ms`));
  });

  it('refuses a sniff.maxBytes too small to hold any CONNECT', () => {
    expect(errorFor({ 'sniff.maxBytes': 10 })).toMatch(/sniff\.maxBytes: must be a whole number of bytes, at least 64/);
  });

  it('still allows 0 for the idle timeouts, which turns them off', () => {
    expect(() => errorFor({ 'timeouts.client': 0 })).toThrow(/to be rejected/);
  });
});

describe('WebSocket listeners', () => {
  it.each([
    ['a path without a slash', { path: 'mqtt' }, /\[0\]\.websocket\.path must start with "\/"/],
    ['an empty subprotocol list', { protocols: [] }, /\[0\]\.websocket\.protocols must be a non-empty list/],
    ['a header limit that is too small', { maxHeaderBytes: 10 }, /\[0\]\.websocket\.maxHeaderBytes must be a whole number from 512 to 65536/],
    ['an unknown key', { origin: '*' }, /\[0\]\.websocket has unknown keys: origin/],
    ['a string', '/mqtt', /\[0\]\.websocket must be true or a/],
  ])('rejects %s', (_name, websocket, message) => {
    expect(errorFor({ listeners: [{ name: 'ws', address: '127.0.0.1:0', websocket }] })).toMatch(message);
  });
});
