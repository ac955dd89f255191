import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.ts';
import { ConfigError } from '../../src/errors.ts';

// Every call passes its own `env` object: process.env is never read or changed by these tests.
const NO_ENV = {};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tether-config-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

describe('loadConfig defaults', () => {
  // The defaults reproduce the seed setup: client-id stickiness, stick table then least-connections.
  it('equal the seed configuration', () => {
    const config = loadConfig({ env: NO_ENV });
    expect(config).toMatchObject({
      listen: { host: '127.0.0.1', port: 1883 },
      admin: undefined,
      backends: [],
      key: [{ use: 'client-id', options: {} }],
      select: [{ use: 'stick-table', options: {} }, { use: 'least-connections', options: {} }],
      sinks: [{ use: 'proxy-protocol', options: {} }],
      plugins: [],
      sniff: { maxBytes: 65536, timeoutMs: 5000 },
      timeouts: { connectMs: 5000, clientMs: 600_000, serverMs: 600_000 },
      retries: 1,
      embedded: { brokers: 2 },
      log: { level: 'info' },
    });
  });

  it('resolves relative paths against the working directory when there is no file', () => {
    expect(loadConfig({ env: NO_ENV }).baseDir).toBe(process.cwd());
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(loadConfig({ env: NO_ENV }))).toBe(true);
  });
});

describe('loadConfig from files', () => {
  const YAML_TEXT = [
    'listen: 127.0.0.1:2000',
    'admin: 127.0.0.1:9000',
    'retries: 3',
    'backends:',
    '  - a=127.0.0.1:1884',
    '  - { name: b, address: "[::1]:1885", weight: 2, state: drain, sendProxy: v2 }',
    'key: [username, client-id]',
    'select:',
    '  - use: stick-table',
    '    options: { size: 10, expire: 1m }',
    '  - least-connections',
    'sniff:',
    '  timeout: 1s',
    'timeouts:',
    '  connect: 250',
    'log:',
    '  level: debug',
    '',
  ].join('\n');

  const EXPECTED = {
    listen: { host: '127.0.0.1', port: 2000 },
    admin: { listen: { host: '127.0.0.1', port: 9000 }, token: undefined, hosts: [] },
    retries: 3,
    backends: [
      { id: 'a', host: '127.0.0.1', port: 1884, weight: 1, state: 'ready', sendProxy: 'none' },
      { id: 'b', host: '::1', port: 1885, weight: 2, state: 'drain', sendProxy: 'v2' },
    ],
    key: [{ use: 'username', options: {} }, { use: 'client-id', options: {} }],
    select: [{ use: 'stick-table', options: { size: 10, expire: '1m' } }, { use: 'least-connections', options: {} }],
    sniff: { maxBytes: 65536, timeoutMs: 1000 },
    // A bare number is milliseconds; the unset timeouts keep their defaults.
    timeouts: { connectMs: 250, clientMs: 600_000, serverMs: 600_000 },
    log: { level: 'debug' },
  };

  it.each(['yaml', 'yml'])('reads a .%s file', (ext) => {
    const path = file(`full.${ext}`, YAML_TEXT);
    const config = loadConfig({ file: path, env: NO_ENV });
    expect(config).toMatchObject(EXPECTED);
    expect(config.baseDir).toBe(dir);
  });

  it('reads the same configuration from a .json file', () => {
    const json = {
      listen: '127.0.0.1:2000',
      admin: '127.0.0.1:9000',
      retries: 3,
      backends: ['a=127.0.0.1:1884', { name: 'b', address: '[::1]:1885', weight: 2, state: 'drain', sendProxy: 'v2' }],
      key: ['username', 'client-id'],
      select: [{ use: 'stick-table', options: { size: 10, expire: '1m' } }, 'least-connections'],
      sniff: { timeout: '1s' },
      timeouts: { connect: 250 },
      log: { level: 'debug' },
    };
    const config = loadConfig({ file: file('full.json', JSON.stringify(json)), env: NO_ENV });
    expect(config).toMatchObject(EXPECTED);
  });

  it('accepts a path relative to the working directory and sets baseDir to the file directory', () => {
    const path = file('relative.json', JSON.stringify({ retries: 7 }));
    const config = loadConfig({ file: relative(process.cwd(), path), env: NO_ENV });
    expect(config.retries).toBe(7);
    expect(config.baseDir).toBe(dir);
  });

  it('treats an empty YAML file as all defaults', () => {
    const config = loadConfig({ file: file('empty.yaml', ''), env: NO_ENV });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 1883 });
    expect(config.baseDir).toBe(dir);
  });

  it('rejects a missing file, naming it', () => {
    const missing = join(dir, 'does-not-exist.yaml');
    const err = configError(() => loadConfig({ file: missing, env: NO_ENV }));
    expect(err.code).toBe('TETHER_ERR_CONFIG');
    expect(err.message).toContain(missing);
    expect(err.message).toMatch(/does not exist/);
  });

  it('rejects an extension it cannot parse, naming the accepted ones', () => {
    const err = configError(() => loadConfig({ file: file('config.toml', 'retries = 1\n'), env: NO_ENV }));
    expect(err.message).toMatch(/\.json, \.yaml or \.yml/);
  });

  it.each([
    ['YAML', 'broken.yaml', 'listen: [\n'],
    ['JSON', 'broken.json', '{ "listen": '],
  ])('reports unparsable %s with the file name', (_kind, name, text) => {
    const path = file(name, text);
    const err = configError(() => loadConfig({ file: path, env: NO_ENV }));
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/could not be read/);
  });

  // KNOWN SOURCE BUG (fails today): forgetting the `-` in YAML turns a list into a mapping. convict's
  // loadFile deep-merges that mapping into the default array instead of replacing it, so the
  // validators still see the default list and the mistake is silently ignored: `key: {use:
  // username}` keeps client-id, and a mapping under `backends` leaves the list empty, which starts
  // the embedded brokers instead of the user's broker.
  it.each([
    ['key', 'key:\n  use: username\n'],
    ['select', 'select:\n  use: least-connections\n'],
    ['backends', 'backends:\n  name: a\n  address: 127.0.0.1:1884\n'],
  ])('rejects %s written as a mapping instead of a list', (option, text) => {
    const path = file(`mapping-${option}.yaml`, text);
    const err = configError(() => loadConfig({ file: path, env: NO_ENV }));
    expect(err.message).toContain(option);
  });

  it('rejects an unknown key in a file, naming the key and the file', () => {
    const path = file('typo.yaml', 'lissten: 127.0.0.1:1883\n');
    const err = configError(() => loadConfig({ file: path, env: NO_ENV }));
    expect(err.message).toContain(path);
    expect(err.message).toContain('lissten');
  });
});

describe('loadConfig from TETHER_* environment', () => {
  it('reads each variable into its option', () => {
    const config = loadConfig({
      env: {
        TETHER_LISTEN: '[::1]:0',
        TETHER_ADMIN: '127.0.0.1:0',
        TETHER_BACKENDS: 'a=127.0.0.1:1884, b=[::1]:1885',
        TETHER_KEY: 'username,client-id',
        TETHER_SELECT: 'least-connections',
        TETHER_SINKS: '',
        TETHER_SNIFF_MAX_BYTES: '1024',
        TETHER_SNIFF_TIMEOUT: '250ms',
        TETHER_TIMEOUT_CONNECT: '2s',
        TETHER_TIMEOUT_CLIENT: '1m',
        TETHER_TIMEOUT_SERVER: '2m',
        TETHER_RETRIES: '4',
        TETHER_EMBEDDED_BROKERS: '3',
        TETHER_LOG_LEVEL: 'warn',
      },
    });
    expect(config).toMatchObject({
      listen: { host: '::1', port: 0 },
      admin: { listen: { host: '127.0.0.1', port: 0 }, token: undefined, hosts: [] },
      backends: [
        { id: 'a', host: '127.0.0.1', port: 1884 },
        { id: 'b', host: '::1', port: 1885 },
      ],
      key: [{ use: 'username' }, { use: 'client-id' }],
      select: [{ use: 'least-connections' }],
      // An empty list variable means an empty chain (no sinks).
      sinks: [],
      sniff: { maxBytes: 1024, timeoutMs: 250 },
      timeouts: { connectMs: 2000, clientMs: 60_000, serverMs: 120_000 },
      retries: 4,
      embedded: { brokers: 3 },
      log: { level: 'warn' },
    });
  });

  it('ignores variables that are not Tether options', () => {
    const config = loadConfig({ env: { PATH: '/bin', TETHER: 'x', TETHER_UNKNOWN: '1' } });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 1883 });
  });

  it('rejects a bad value from the environment, naming the option', () => {
    const err = configError(() => loadConfig({ env: { TETHER_RETRIES: 'many' } }));
    expect(err.message).toMatch(/retries:/);
  });
});

describe('loadConfig precedence: overrides > environment > file > defaults', () => {
  it('lets each layer win over the ones below, option by option', () => {
    const path = file('layers.yaml', 'listen: 127.0.0.1:1001\nretries: 2\nlog: { level: debug }\nembedded: { brokers: 5 }\n');
    const config = loadConfig({
      file: path,
      env: { TETHER_LISTEN: '127.0.0.1:1002', TETHER_RETRIES: '3' },
      overrides: { listen: '127.0.0.1:1003' },
    });
    expect(config.listen?.port).toBe(1003); // file, env and override: override wins
    expect(config.retries).toBe(3); // file and env: env wins
    expect(config.log.level).toBe('debug'); // file only
    expect(config.embedded.brokers).toBe(5); // file only
    expect(config.timeouts.connectMs).toBe(5000); // nobody: default
  });

  it('skips overrides whose value is undefined (flags not given), so the environment still counts', () => {
    const config = loadConfig({ env: { TETHER_RETRIES: '3' }, overrides: { retries: undefined, 'log.level': 'error' } });
    expect(config.retries).toBe(3);
    expect(config.log.level).toBe('error');
  });

  it('takes nested overrides by dotted path', () => {
    const config = loadConfig({ env: NO_ENV, overrides: { 'timeouts.connect': '2s', 'sniff.maxBytes': 100 } });
    expect(config.timeouts.connectMs).toBe(2000);
    expect(config.sniff.maxBytes).toBe(100);
  });

  it('validates overrides like any other source', () => {
    const err = configError(() => loadConfig({ env: NO_ENV, overrides: { listen: 'nowhere' } }));
    expect(err.message).toMatch(/listen: "nowhere" is not host:port/);
  });
  it('applies adjust last, to the validated configuration of every source, and freezes its result', () => {
    const path = file('chain.yaml', 'select:\n  - { use: stick-table, options: { expire: 10m } }\n  - least-connections\n');
    const config = loadConfig({
      file: path,
      env: NO_ENV,
      adjust: (c) => ({ ...c, select: c.select.map((e) => (e.use === 'stick-table' ? { ...e, options: { ...e.options, store: { type: 'redis' } } } : e)) }),
    });
    expect(config.select).toEqual([
      { use: 'stick-table', options: { expire: '10m', store: { type: 'redis' } }, when: 'always' },
      { use: 'least-connections', options: {}, when: 'always' },
    ]);
    expect(Object.isFrozen(config)).toBe(true);
  });
});

describe('loadConfig normalization', () => {
  it.each([
    ['a named string', 'edge=127.0.0.1:1884', { id: 'edge', host: '127.0.0.1', port: 1884 }],
    ['an unnamed string, named by its address', '127.0.0.1:1884', { id: '127.0.0.1:1884', host: '127.0.0.1', port: 1884 }],
    ['a named IPv6 string', 'v6=[::1]:1884', { id: 'v6', host: '::1', port: 1884 }],
    ['an unnamed IPv6 string', '[::1]:1884', { id: '[::1]:1884', host: '::1', port: 1884 }],
    ['a host name', 'broker.local:8883', { id: 'broker.local:8883', host: 'broker.local', port: 8883 }],
  ])('reads a backend from %s', (_name, entry, expected) => {
    const [backend] = loadConfig({ env: NO_ENV, overrides: { backends: [entry] } }).backends;
    expect(backend).toEqual({ ...expected, weight: 1, state: 'ready', sendProxy: 'none' });
  });

  it('reads a backend object, defaulting the fields left out', () => {
    const backends = loadConfig({
      env: NO_ENV,
      overrides: { backends: [{ address: '127.0.0.1:1' }, { name: 'full', address: '[::1]:2', weight: 256, state: 'maint', sendProxy: 'v1' }] },
    }).backends;
    expect(backends).toEqual([
      { id: '127.0.0.1:1', host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy: 'none', maxconn: 0 },
      { id: 'full', host: '::1', port: 2, weight: 256, state: 'maint', sendProxy: 'v1', maxconn: 0 },
    ]);
  });

  it('reads a backup backend (offered only when no other can take a client) and refuses a backup that is not a boolean', () => {
    const [spare] = loadConfig({ env: NO_ENV, overrides: { backends: [{ name: 'spare', address: '127.0.0.1:3', backup: true }] } }).backends;
    expect(spare).toMatchObject({ id: 'spare', backup: true });
    expect(() => loadConfig({ env: NO_ENV, overrides: { backends: [{ address: '127.0.0.1:3', backup: 'yes' }] } })).toThrow(/\[0\]\.backup must be true or false/);
  });

  it('turns chain names into { use, options } entries and keeps given options', () => {
    const config = loadConfig({ env: NO_ENV, overrides: { key: ['username', { use: 'client-id' }, { use: './x.mjs', options: { a: 1 } }] } });
    expect(config.key).toEqual([
      { use: 'username', options: {}, when: 'always' },
      { use: 'client-id', options: {}, when: 'always' },
      { use: './x.mjs', options: { a: 1 }, when: 'always' },
    ]);
  });

  it('gives the admin API a loopback host when only a port is given', () => {
    expect(loadConfig({ env: NO_ENV, overrides: { admin: ':9000' } }).admin?.listen).toEqual({ host: '127.0.0.1', port: 9000 });
  });

  it('gives the listener all interfaces when only a port is given', () => {
    expect(loadConfig({ env: NO_ENV, overrides: { listen: ':1883' } }).listen).toEqual({ host: '0.0.0.0', port: 1883 });
  });
});

describe('workers', () => {
  it('defaults to one process, scheduling os', () => {
    expect(loadConfig({ env: {} })).toMatchObject({ workers: 1, cluster: { scheduling: 'os' } });
  });

  it('takes a whole number from a flag or TETHER_WORKERS, and auto as the CPU count', () => {
    expect(loadConfig({ env: {}, overrides: { workers: '3' } }).workers).toBe(3);
    expect(loadConfig({ env: { TETHER_WORKERS: '2', TETHER_CLUSTER_SCHEDULING: 'rr' } })).toMatchObject({ workers: 2, cluster: { scheduling: 'rr' } });
    expect(loadConfig({ env: { TETHER_WORKERS: 'auto' } }).workers).toBe(availableParallelism());
  });

  it.each([['0'], ['-1'], ['1.5'], ['many']])('refuses %s naming the option', (value) => {
    expect(() => loadConfig({ env: {}, overrides: { workers: value } })).toThrow(/workers: must be a whole number of worker processes, at least 1, or "auto"/);
  });
});

describe('admin: an address, or { listen, token, tokenFile, hosts }', () => {
  const TOKEN = 'config-test-token-0123456789';

  it('takes the object form from a file, and the plain address form as admin.listen', () => {
    const object = file('admin-object.yaml', 'admin:\n  listen: 127.0.0.1:9001\n  hosts: [lb1.example.net]\n');
    expect(loadConfig({ file: object, env: NO_ENV }).admin).toEqual({ listen: { host: '127.0.0.1', port: 9001 }, token: undefined, hosts: ['lb1.example.net'] });
    const plain = file('admin-plain.json', '{ "admin": "127.0.0.1:9002" }');
    expect(loadConfig({ file: plain, env: NO_ENV }).admin?.listen).toEqual({ host: '127.0.0.1', port: 9002 });
    // TETHER_ADMIN (the address) and the --admin flag (override `admin`) still set it.
    expect(loadConfig({ env: { TETHER_ADMIN: '127.0.0.1:9003' } }).admin?.listen.port).toBe(9003);
    expect(loadConfig({ file: plain, env: NO_ENV, overrides: { admin: '127.0.0.1:9004' } }).admin?.listen.port).toBe(9004);
  });

  it('reads the token from admin.token, TETHER_ADMIN_TOKEN or the first line of admin.tokenFile (relative to the file)', () => {
    const fromKey = loadConfig({ file: file('t1.yaml', `admin: { listen: "127.0.0.1:0", token: ${TOKEN} }\n`), env: NO_ENV }).admin!.token!;
    expect(fromKey.matches(TOKEN)).toBe(true);
    expect(fromKey.source).toBe('admin.token');
    expect(loadConfig({ env: { TETHER_ADMIN: '127.0.0.1:0', TETHER_ADMIN_TOKEN: TOKEN } }).admin!.token!.matches(TOKEN)).toBe(true);
    file('token.txt', `${TOKEN}\nsecond line ignored\n`);
    const fromFile = loadConfig({ file: file('t2.yaml', 'admin: { listen: "127.0.0.1:0", tokenFile: token.txt }\n'), env: NO_ENV }).admin!.token!;
    expect(fromFile.matches(TOKEN)).toBe(true);
    expect(fromFile.source).toBe(`admin.tokenFile ${join(dir, 'token.txt')}`);
  });

  it('never shows the token: the configuration as JSON says [redacted]', () => {
    const config = loadConfig({ env: { TETHER_ADMIN: '127.0.0.1:0', TETHER_ADMIN_TOKEN: TOKEN } });
    expect(JSON.stringify(config)).not.toContain(TOKEN);
    expect(JSON.stringify(config.admin)).toContain('"token":"[redacted]"');
  });

  it('refuses a token file that is missing, empty or short, and both a token and a file', () => {
    const missing = configError(() => loadConfig({ env: { TETHER_ADMIN: '127.0.0.1:0', TETHER_ADMIN_TOKEN_FILE: join(dir, 'nope.txt') } }));
    expect(missing.message).toContain(`admin.tokenFile ${join(dir, 'nope.txt')} cannot be read: ENOENT`);
    file('empty.txt', '\n');
    expect(configError(() => loadConfig({ env: { TETHER_ADMIN: '127.0.0.1:0', TETHER_ADMIN_TOKEN_FILE: join(dir, 'empty.txt') } })).message)
      .toContain('its first line is empty; put the token there');
    file('short.txt', 'abc\n');
    expect(configError(() => loadConfig({ env: { TETHER_ADMIN: '127.0.0.1:0', TETHER_ADMIN_TOKEN_FILE: join(dir, 'short.txt') } })).message)
      .toContain('the token must be at least 16 characters');
    file('token.txt', `${TOKEN}\n`);
    expect(configError(() => loadConfig({ env: { TETHER_ADMIN: '127.0.0.1:0', TETHER_ADMIN_TOKEN: TOKEN, TETHER_ADMIN_TOKEN_FILE: join(dir, 'token.txt') } })).message)
      .toContain('admin.token (TETHER_ADMIN_TOKEN) and admin.tokenFile (TETHER_ADMIN_TOKEN_FILE) are both set: keep one');
  });

  it('with no admin address the token options are not read', () => {
    expect(loadConfig({ env: { TETHER_ADMIN_TOKEN_FILE: join(dir, 'nope.txt') } }).admin).toBeUndefined();
  });
});

describe('metrics', () => {
  it('are on by default, with no listener of their own', () => {
    expect(loadConfig({ env: {} }).metrics).toEqual({ enabled: true, listen: undefined });
  });

  it('take metrics.listen from a file, TETHER_METRICS_LISTEN or --metrics-listen, on loopback when only a port is given', () => {
    expect(loadConfig({ env: {}, file: file('metrics.yaml', 'metrics:\n  listen: 127.0.0.1:9100\n') }).metrics.listen).toEqual({ host: '127.0.0.1', port: 9100 });
    expect(loadConfig({ env: { TETHER_METRICS_LISTEN: ':9101' } }).metrics.listen).toEqual({ host: '127.0.0.1', port: 9101 });
    expect(loadConfig({ env: {}, overrides: { 'metrics.listen': '0.0.0.0:9102' } }).metrics.listen).toEqual({ host: '0.0.0.0', port: 9102 });
  });

  it('are turned off by metrics.enabled false, also from TETHER_METRICS_ENABLED=false', () => {
    expect(loadConfig({ env: { TETHER_METRICS_ENABLED: 'false' } }).metrics.enabled).toBe(false);
    expect(loadConfig({ env: {}, file: file('no-metrics.yaml', 'metrics:\n  enabled: false\n') }).metrics.enabled).toBe(false);
  });

  it('refuse a metrics listener with the metrics turned off, and a bad address, naming the option', () => {
    expect(configError(() => loadConfig({ env: { TETHER_METRICS_ENABLED: 'false', TETHER_METRICS_LISTEN: ':9100' } })).message).toMatch(/metrics\.listen is set \(:9100\) but metrics\.enabled is false/);
    expect(configError(() => loadConfig({ env: {}, overrides: { 'metrics.listen': 'nowhere' } })).message).toMatch(/metrics\.listen: .*not host:port/);
  });
});
