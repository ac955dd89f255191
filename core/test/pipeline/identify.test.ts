import { describe, expect, it } from 'vitest';
import { PluginHookError } from '../../src/errors.ts';
import { identify } from '../../src/pipeline/identify.ts';
import type { Extractor } from '../../src/plugin.ts';
import { connInfo } from '../fixtures.ts';

const extractor = (name: string, extract: Extractor['extract']) => ({ name, product: { extract } });

describe('identify', () => {
  it('takes the key from the first extractor that returns a non-empty one', () => {
    const conn = connInfo({ clientId: 'dev', username: 'alice' });
    const calls: string[] = [];
    identify(conn, [
      extractor('none', () => (calls.push('none'), undefined)),
      extractor('empty', () => (calls.push('empty'), '')),
      extractor('user', (c) => (calls.push('user'), c.connect.username)),
      extractor('never', () => (calls.push('never'), 'x')),
    ]);
    expect(conn.key).toBe('alice');
    expect(conn.keySource).toBe('user');
    expect(calls).toEqual(['none', 'empty', 'user']);
  });

  it('leaves the connection keyless when no extractor answers', () => {
    const conn = connInfo();
    identify(conn, [extractor('none', () => undefined)]);
    expect(conn.key).toBeUndefined();
    expect(conn.keySource).toBeUndefined();
  });

  it('wraps a throwing extractor in PluginHookError naming plugin and hook', () => {
    const conn = connInfo();
    let err: unknown;
    try {
      identify(conn, [extractor('acme:bad', () => { throw new Error('oops'); })]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PluginHookError);
    expect((err as PluginHookError).code).toBe('TETHER_ERR_PLUGIN_HOOK');
    expect((err as PluginHookError).reason).toBe('plugin_error');
    expect((err as Error).message).toBe('plugin "acme:bad" failed in extract: oops');
  });
});
