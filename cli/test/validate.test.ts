import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@tether/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES, FIXTURES, killAll, lines, runTether, STACK_TRACE } from './helpers/cli.ts';

/** `tether validate`: the schema check plus every plugin and its options, without opening a port. */

const T = 30_000;

// runTether bounds and kills its own process; this is the safety net for anything left.
afterAll(() => killAll());

describe('tether validate: the example configs equivalent to the seed HAProxy config', () => {
  it.each(['seed.yaml', 'seed.json'])('examples/%s is valid and summarised', async (name) => {
    const file = join(EXAMPLES, name);
    const r = await runTether(['validate', '-c', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual([
      `${file}: configuration is valid`,
      '  listen   0.0.0.0:1883',
      '  admin    127.0.0.1:9999',
      '  backends emqx1=127.0.0.1:1884 (proxy v2), emqx2=127.0.0.1:1885 (proxy v2)',
      '  key      client-id',
      '  select   stick-table → least-connections',
      '  sinks    proxy-protocol',
    ]);
  }, T);

  it('seed.yaml and seed.json are the same configuration, with the seed values', () => {
    const yaml = loadConfig({ env: {}, file: join(EXAMPLES, 'seed.yaml') });
    const json = loadConfig({ env: {}, file: join(EXAMPLES, 'seed.json') });
    expect(yaml).toEqual(json);
    expect(yaml.listen).toEqual({ host: '0.0.0.0', port: 1883 });
    expect(yaml.admin?.listen).toEqual({ host: '127.0.0.1', port: 9999 });
    expect(yaml.backends.map((b) => [b.id, b.host, b.port, b.sendProxy])).toEqual([['emqx1', '127.0.0.1', 1884, 'v2'], ['emqx2', '127.0.0.1', 1885, 'v2']]);
    expect(yaml.key).toEqual([expect.objectContaining({ use: 'client-id', options: {} })]);
    expect(yaml.select).toEqual([
      expect.objectContaining({ use: 'stick-table', options: { size: 100_000, expire: '30m', keyLength: 32 } }),
      expect.objectContaining({ use: 'least-connections', options: {} }),
    ]);
    expect(yaml.sinks).toEqual([expect.objectContaining({ use: 'proxy-protocol', options: {} })]);
    expect(yaml.timeouts).toEqual({ connectMs: 30_000, clientMs: 600_000, serverMs: 600_000 });
  });
});

describe('tether validate: good files', () => {
  it('prints a summary of a YAML file and exits 0', async () => {
    const file = join(FIXTURES, 'good.yaml');
    const r = await runTether(['validate', '-c', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual([
      `${file}: configuration is valid`,
      '  listen   127.0.0.1:2883',
      '  admin    127.0.0.1:2999',
      '  backends one=127.0.0.1:2884, two=127.0.0.1:2885 (proxy v1)',
      '  key      username → client-id',
      '  select   stick-table → least-connections',
      '  sinks    proxy-protocol',
    ]);
  }, T);

  it('loads a plugin listed in the file by a path relative to the file, whatever the working directory', async () => {
    const file = join(FIXTURES, 'with-plugin.yaml');
    const r = await runTether(['validate', '-c', file], { cwd: tmpdir() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  select   stick-table → e2e:last-backend\n');
  }, T);

  it('with no file: the defaults, from flags and environment', async () => {
    const r = await runTether(['validate']);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual([
      'flags and environment: configuration is valid',
      '  listen   127.0.0.1:1883',
      '  admin    off',
      '  backends none (2 embedded brokers)',
      '  key      client-id',
      '  select   stick-table → least-connections',
      '  sinks    proxy-protocol',
    ]);
  }, T);
});

describe('tether validate: bad files exit 1 with a message that names what to fix', () => {
  const cases: { file: string; expect: (string | RegExp)[] }[] = [
    { file: 'bad-listen.yaml', expect: ['invalid configuration in', 'bad-listen.yaml', 'listen: "nowhere" is not host:port'] },
    { file: 'bad-log-level.yaml', expect: ['bad-log-level.yaml', 'log.level', 'loud', '"fatal","error","warn","info","debug","trace","silent"'] },
    { file: 'unknown-key.json', expect: ['unknown-key.json', "'lisen' not declared"] },
    { file: 'unknown-plugin.yaml', expect: ['plugin "client-idd"', 'is not a known extractor', 'client-id, username'] },
    { file: 'bad-plugin-option.yaml', expect: ['plugin "stick-table"', 'invalid options', 'expire', '"soon"'] },
    { file: 'chain-ends-in-stick-table.yaml', expect: ['select', '[stick-table]', 'can leave a client without a backend', 'least-connections'] },
  ];

  it.each(cases)('$file', async ({ file, expect: parts }) => {
    const r = await runTether(['validate', '-c', join(FIXTURES, 'invalid', file)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tether: /);
    for (const part of parts) expect(r.stderr).toContain(part);
    expect(r.stderr).not.toMatch(STACK_TRACE);
  }, T);

  it('a file that does not exist', async () => {
    const missing = join(FIXTURES, 'no-such-config.yaml');
    const r = await runTether(['validate', '-c', missing]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([`tether: config file ${missing} does not exist`]);
    expect(r.stdout).toBe('');
  }, T);

  describe('files written on the spot', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'tether-validate-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('a file with another extension', async () => {
      const file = join(dir, 'tether.toml');
      writeFileSync(file, 'listen = "127.0.0.1:1883"\n');
      const r = await runTether(['validate', '-c', file]);
      expect(r.code).toBe(1);
      expect(lines(r.stderr)).toEqual([`tether: config file ${file}: use a .json, .yaml or .yml file`]);
    }, T);

    it('a JSON file with a syntax error', async () => {
      const file = join(dir, 'broken.json');
      writeFileSync(file, '{ "listen": "127.0.0.1:1883", }\n');
      const r = await runTether(['validate', '-c', file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^tether: config file ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} could not be read: `));
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }, T);

    it('two backends with the same name', async () => {
      const file = join(dir, 'twice.yaml');
      writeFileSync(file, 'backends: [a=127.0.0.1:1884, a=127.0.0.1:1885]\n');
      const r = await runTether(['validate', '-c', file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('backends: [1].name "a" is used twice');
    }, T);

    it('every schema error of a file is reported at once', async () => {
      const file = join(dir, 'several.yaml');
      writeFileSync(file, 'listen: nowhere\nlog: { level: loud }\nretries: -1\n');
      const r = await runTether(['validate', '-c', file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('listen:');
      expect(r.stderr).toContain('log.level:');
      expect(r.stderr).toContain('retries:');
    }, T);
  });
});

describe('tether validate: TETHER_* environment variables', () => {
  const good = join(FIXTURES, 'good.yaml');

  it('configure Tether without a file', async () => {
    const r = await runTether(['validate'], {
      env: {
        TETHER_LISTEN: '127.0.0.1:4883',
        TETHER_ADMIN: '127.0.0.1:4999',
        TETHER_BACKENDS: 'x=127.0.0.1:4884,y=127.0.0.1:4885',
        TETHER_KEY: 'username',
        TETHER_SELECT: 'least-connections',
        TETHER_SINKS: 'proxy-protocol',
      },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual([
      'flags and environment: configuration is valid',
      '  listen   127.0.0.1:4883',
      '  admin    127.0.0.1:4999',
      '  backends x=127.0.0.1:4884, y=127.0.0.1:4885',
      '  key      username',
      '  select   least-connections',
      '  sinks    proxy-protocol',
    ]);
  }, T);

  it('override the file, and flags override both', async () => {
    const env = { TETHER_LISTEN: '127.0.0.1:5883', TETHER_KEY: 'client-id' };
    const fromEnv = await runTether(['validate', '-c', good], { env });
    expect(fromEnv.code).toBe(0);
    expect(fromEnv.stdout).toContain('  listen   127.0.0.1:5883\n');
    expect(fromEnv.stdout).toContain('  key      client-id\n');
    // Untouched keys still come from the file.
    expect(fromEnv.stdout).toContain('  admin    127.0.0.1:2999\n');

    const fromFlag = await runTether(['validate', '-c', good, '--listen', '127.0.0.1:6883', '--key', 'username'], { env });
    expect(fromFlag.code).toBe(0);
    expect(fromFlag.stdout).toContain('  listen   127.0.0.1:6883\n');
    expect(fromFlag.stdout).toContain('  key      username\n');
  }, T);

  it('a bad value in the environment fails like one in a file', async () => {
    const r = await runTether(['validate', '-c', good], { env: { TETHER_LOG_LEVEL: 'loud' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('log.level');
    expect(r.stderr).toContain('loud');
    expect(r.stdout).toBe('');
  }, T);

  it('TETHER_SELECT naming an unknown strategy fails naming it and the known ones', async () => {
    const r = await runTether(['validate'], { env: { TETHER_SELECT: 'stick-table,e2e-no-such-strategy' } });
    expect(r.code).toBe(1);
    const [line, ...rest] = lines(r.stderr);
    expect(rest).toEqual([]);
    expect(line).toMatch(/^tether: plugin "e2e-no-such-strategy": is not a known strategy \(known: [^)]*\)/);
    expect(line).toMatch(/known: [^)]*\bstick-table\b/);
    expect(line).toMatch(/known: [^)]*\bleast-connections\b/);
  }, T);
});

describe('tether validate: usage errors exit 2', () => {
  it('an unknown flag: named, then the usage of validate', async () => {
    const r = await runTether(['validate', '--lissen', '127.0.0.1:1883']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)[0]).toBe('tether: unknown option --lissen');
    expect(lines(r.stderr)[1]).toBe('Usage: tether validate [-c FILE] [options]');
    expect(r.stdout).toBe('');
  }, T);

  it('--retries that is not a number', async () => {
    const r = await runTether(['validate', '--retries', 'many']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual(['tether: --retries must be a whole number, got "many"']);
  }, T);
});
