import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateOptions } from '@tether/core';
import { afterAll, describe, expect, it } from 'vitest';
import stickTable from '../src/index.ts';
import { describeStore, parseStore } from '../src/store-options.ts';

const dir = mkdtempSync(join(tmpdir(), 'tether-store-options-'));
const pem = join(dir, 'ca.pem');
writeFileSync(pem, 'not checked here');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('store option', () => {
  it('is checked field by field by the plugin\'s convict schema', () => {
    expect(() => validateOptions(stickTable, { store: { type: 'etcd' } })).toThrow(/store.type: must be one of the possible values: \["memory","redis"\]/);
    expect(() => validateOptions(stickTable, { store: { type: 'redis', url: 'redis://a', timeout: 'soon' } })).toThrow(/store.timeout: must be a duration from 1ms to 10s/);
    expect(() => validateOptions(stickTable, { store: { type: 'redis', url: 'redis://a', tls: { verify: true } } })).toThrow(/store.tls.verify' not declared/);
    expect(() => validateOptions(stickTable, { store: { type: 'redis', nodes: [7000] } })).toThrow(/store.nodes: must be a list of "host:port" strings/);
    const validated = validateOptions(stickTable, { store: { type: 'redis', url: 'redis://127.0.0.1:6379/1', tls: { ca: pem } } }) as { store: unknown };
    expect(parseStore(validated.store, {})).toEqual({ type: 'redis', server: { host: '127.0.0.1', port: 6379 }, db: 1, tls: { ca: pem, rejectUnauthorized: true }, prefix: 'tether:', timeoutMs: 50 });
    expect(parseStore((validateOptions(stickTable, {}) as { store: unknown }).store, {})).toEqual({ type: 'memory' });
  });

  it('defaults to the memory store', () => {
    expect(parseStore(undefined, {})).toEqual({ type: 'memory' });
    expect(parseStore({ type: 'memory' }, {})).toEqual({ type: 'memory' });
  });

  it('reads a redis URL: host, port, database, credentials; defaults for prefix and timeout', () => {
    expect(parseStore({ type: 'redis', url: 'redis://alice:s%40cret@10.0.0.5:6380/2' }, {})).toEqual({
      type: 'redis', server: { host: '10.0.0.5', port: 6380 }, db: 2, username: 'alice', password: 's@cret', prefix: 'tether:', timeoutMs: 50,
    });
    expect(parseStore({ type: 'redis', url: 'redis://[::1]' }, {})).toMatchObject({ server: { host: '::1', port: 6379 }, db: 0 });
  });

  it('rediss:// turns TLS on; tls options give the CA, client certificate and server name', () => {
    expect(parseStore({ type: 'redis', url: 'rediss://127.0.0.1:6380' }, {})).toMatchObject({ tls: { rejectUnauthorized: true } });
    expect(parseStore({ type: 'redis', url: 'redis://127.0.0.1', tls: { ca: pem, cert: pem, key: pem, servername: 'redis.test' } }, {}))
      .toMatchObject({ tls: { ca: pem, cert: pem, key: pem, servername: 'redis.test', rejectUnauthorized: true } });
  });

  it('takes the user name and password from TETHER_REDIS_USERNAME / TETHER_REDIS_PASSWORD when the URL has none', () => {
    const env = { TETHER_REDIS_USERNAME: 'tether', TETHER_REDIS_PASSWORD: 'from-env' };
    expect(parseStore({ type: 'redis', url: 'redis://127.0.0.1' }, env)).toMatchObject({ username: 'tether', password: 'from-env' });
    expect(parseStore({ type: 'redis', url: 'redis://:in-url@127.0.0.1' }, env)).toMatchObject({ password: 'in-url' });
  });

  it('Sentinel and Cluster forms', () => {
    expect(parseStore({ type: 'redis', sentinels: ['10.0.0.1:26379', '10.0.0.2:26379'], name: 'mymaster', db: 1 }, {}))
      .toMatchObject({ sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26379 }], name: 'mymaster', db: 1 });
    expect(parseStore({ type: 'redis', nodes: '10.0.0.1:7000,10.0.0.2:7000' }, {})).toMatchObject({ nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7000 }], db: 0 });
  });

  it.each([
    [{ type: 'etcd' }, /type must be memory or redis/],
    [{ type: 'memory', url: 'redis://x' }, /url: only for type redis/],
    [{ type: 'redis' }, /needs one of url .*, sentinels .* or nodes/],
    [{ type: 'redis', url: 'redis://a', nodes: ['b:1'] }, /only one of url, sentinels, nodes \(got url and nodes\)/],
    [{ type: 'redis', url: 'http://a:1' }, /must start with redis:\/\/ or rediss:\/\//],
    [{ type: 'redis', url: 'redis://a:1/x' }, /database number/],
    [{ type: 'redis', sentinels: ['a:1'] }, /sentinels needs name/],
    [{ type: 'redis', nodes: ['a:1'], db: 3 }, /Cluster has only database 0/],
    [{ type: 'redis', url: 'redis://a', timeout: 0 }, /timeout must be a duration from 1ms to 10s/],
    [{ type: 'redis', url: 'redis://a', timeout: '1m' }, /timeout must be a duration from 1ms to 10s/],
    [{ type: 'redis', url: 'redis://a', prefix: '' }, /prefix must be a non-empty string/],
    [{ type: 'redis', url: 'redis://a', tls: { ca: '/nonexistent/ca.pem' } }, /tls.ca: file \/nonexistent\/ca.pem does not exist/],
    [{ type: 'redis', url: 'redis://a', tls: { cert: pem } }, /tls.cert and tls.key go together/],
    [{ type: 'redis', url: 'redis://a', tls: { verify: true } }, /tls has unknown keys: verify/],
    [{ type: 'redis', host: 'a' }, /unknown keys: host/],
  ])('rejects %j with a message naming the field', (store, message) => {
    expect(() => parseStore(store, {})).toThrow(message);
  });

  it('never repeats a password: not in errors, not in the description', () => {
    const secret = 'hunter2-secret';
    for (const store of [{ type: 'redis', url: `redis://user:${secret}@h:1/99` }, { type: 'redis', url: `redis://:${secret}@h:1`, nodes: ['a:1'] }, { type: 'memory', url: `redis://:${secret}@h` }]) {
      let message = '';
      try {
        // As Tether does it: the schema first (options phase), then the rules across fields (create).
        const validated = validateOptions(stickTable, { store }) as { store: unknown };
        parseStore(validated.store, {});
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain(secret);
    }
    const parsed = parseStore({ type: 'redis', url: `redis://user:${secret}@10.0.0.5:6379/1`, prefix: 'app1:' }, {});
    expect(describeStore(parsed)).toBe('redis redis://user@10.0.0.5:6379/1 prefix app1:');
    expect(describeStore(parseStore({ type: 'redis', sentinels: ['s1:26379', 's2:26379'], name: 'mymaster', password: secret }, {}))).toBe('redis sentinel mymaster@s1:26379,s2:26379/0 prefix tether:');
    expect(describeStore(parseStore({ type: 'redis', nodes: ['n1:7000', 'n2:7000'], tls: { enabled: true } }, {}))).toBe('redis cluster n1:7000,n2:7000 tls prefix tether:');
  });
});
