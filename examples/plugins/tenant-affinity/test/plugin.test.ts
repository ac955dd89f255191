import { createLogger, PLUGIN_API_VERSION, PluginError, Stats, validateOptions, type Backend, type ConnInfo, type Strategy } from '@tether/core';
import { testBackend, testConn } from '@tether/core/testing';
import { describe, expect, it } from 'vitest';
import tenantAffinity, { TENANT_ATTRIBUTE } from '../src/index.ts';

// The plugin as the core drives it: options validated by its own schema (validateOptions is the
// function Tether's loader calls), create() given a context, then select() per connection.

const backend = (id: string, activeConnections = 0): Backend => testBackend(id, { activeConnections });
const [B1, B2, B3, OTHER] = [backend('b1'), backend('b2'), backend('b3'), backend('other')];
const ALL = [B1, B2, B3, OTHER];
const TENANTS = { acme: ['b1', 'b2'], globex: ['b3'] };

let nextId = 1;
/** A connection as the pipeline builds it; the key is the client id, as with the default `key: [client-id]`. */
function conn(username: string | undefined, clientId = `client-${nextId}`, dryRun = false): ConnInfo {
  return testConn({
    id: nextId++,
    connect: { clientId, ...(username === undefined ? {} : { username }) },
    ...(clientId ? { key: clientId, keySource: 'client-id' } : {}),
    dryRun,
  });
}

/** The options of the README's example: both `acme:device` and `acme/device` name tenant acme. */
const OPTIONS = { tenants: TENANTS, separator: [':', '/'] };

async function make(options: Record<string, unknown> = OPTIONS) {
  const stats = new Stats();
  const ctx = { log: createLogger('silent'), stats: stats.scope('tenant_affinity'), now: Date.now, signal: new AbortController().signal, backends: [] };
  const strategy: Strategy = await tenantAffinity.create(ctx, validateOptions(tenantAffinity, options) as never);
  const count = (name: string): number => stats.get(`tenant_affinity_${name}`);
  /** The backend chosen, or 'abstain'. */
  const pick = async (c: ConnInfo, offered: readonly Backend[] = ALL): Promise<Backend | 'abstain'> => {
    const s = await strategy.select(c, offered);
    return s.kind === 'selected' ? s.backend : 'abstain';
  };
  return { strategy, count, pick };
}

describe('metadata', () => {
  it('is a namespaced strategy written for this contract version, with a version of its own', () => {
    expect(tenantAffinity).toMatchObject({ name: 'example:tenant-affinity', kind: 'strategy', apiVersion: PLUGIN_API_VERSION, version: '1.0.0' });
  });

  it('may abstain, so it never claims to end a chain', async () => {
    const { strategy } = await make();
    expect(strategy.alwaysAnswers).toBeFalsy();
  });
});

describe('options', () => {
  it('fills in the defaults', () => {
    expect(validateOptions(tenantAffinity, { tenants: TENANTS })).toEqual({ tenants: TENANTS, separator: ':', pick: 'hash' });
  });

  it('accepts one separator or a list', () => {
    expect(validateOptions(tenantAffinity, { tenants: TENANTS, separator: '/' })).toMatchObject({ separator: '/' });
    expect(validateOptions(tenantAffinity, { tenants: TENANTS, separator: ['::', '@'] })).toMatchObject({ separator: ['::', '@'] });
  });

  it.each([
    [{}, /tenants: is required: a mapping of tenant name to a list of backend names/],
    [{ tenants: {} }, /tenants: must name at least one tenant/],
    [{ tenants: 'acme' }, /tenants: must be a mapping of tenant name to a list of backend names.*: value was "acme"/],
    [{ tenants: ['acme'] }, /tenants: must be a mapping of tenant name to a list of backend names/],
    [{ tenants: { acme: 'b1' } }, /tenants: tenant "acme" must map to a non-empty list of backend names/],
    [{ tenants: { acme: [] } }, /tenants: tenant "acme" must map to a non-empty list/],
    [{ tenants: { acme: ['b1', 7] } }, /tenants: tenant "acme" must map to a non-empty list of backend names/],
    [{ tenants: TENANTS, separator: '' }, /separator: must be a non-empty string or a non-empty list/],
    [{ tenants: TENANTS, separator: [] }, /separator: must be a non-empty string or a non-empty list/],
    [{ tenants: TENANTS, pick: 'random' }, /pick: must be one of the possible values: \["hash","least-connections"\]/],
    [{ tenants: TENANTS, fallback: 'abstain' }, /'fallback' not declared/],
  ])('rejects %j with an error naming the plugin and the option', (options, message) => {
    let error: unknown;
    try {
      validateOptions(tenantAffinity, options);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PluginError);
    expect(error).toMatchObject({ code: 'TETHER_ERR_PLUGIN_OPTIONS', plugin: 'example:tenant-affinity' });
    expect((error as Error).message).toMatch(/^plugin "example:tenant-affinity": invalid options: /);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses at create a tenant name that contains a separator (it could never match)', async () => {
    await expect(make({ tenants: { 'acme:eu': ['b1'] } })).rejects.toThrow('tenant "acme:eu" contains the separator ":"');
    // With another separator the same name is fine.
    const { pick } = await make({ tenants: { 'acme:eu': ['b1'] }, separator: '/' });
    expect(await pick(conn('acme:eu/device'))).toBe(B1);
  });
});

describe('select', () => {
  it('sends a tenant to a backend of its group, whichever separator the user name uses', async () => {
    const { pick, count } = await make();
    for (let i = 0; i < 20; i++) {
      expect([B1, B2]).toContain(await pick(conn(`acme:device${i}`)));
      expect([B1, B2]).toContain(await pick(conn(`acme/device${i}`)));
      expect(await pick(conn(`globex:device${i}`))).toBe(B3);
    }
    expect(count('selected')).toBe(60);
  });

  it('returns the offered backend object (the chain rejects any other)', async () => {
    const { pick } = await make();
    const offered = [backend('b3'), backend('other')];
    expect(await pick(conn('globex:x'), offered)).toBe(offered[0]);
  });

  it('records the tenant in the connection attributes for later plugins', async () => {
    const { strategy } = await make();
    const c = conn('globex:x');
    await strategy.select(c, ALL);
    expect(c.attributes.get(TENANT_ATTRIBUTE)).toBe('globex');
  });

  it.each([
    ['an unknown tenant', 'initech:device1', 'unknown_tenant'],
    ['no user name', undefined, 'no_tenant'],
    ['a user name without a separator', 'device1', 'no_tenant'],
    ['a user name that starts with the separator', ':device1', 'no_tenant'],
    ['a tenant named like an Object property', 'constructor:device1', 'unknown_tenant'],
  ])('abstains for %s and counts it', async (_what, username, counter) => {
    const { pick, count } = await make();
    const c = conn(username);
    expect(await pick(c)).toBe('abstain');
    expect(count(counter)).toBe(1);
    expect(count('selected')).toBe(0);
    expect(c.attributes.has(TENANT_ATTRIBUTE)).toBe(false);
  });

  it('abstains when none of the group is offered (down, drained, full or just refused)', async () => {
    const { pick, count } = await make();
    expect(await pick(conn('globex:device1'), [B1, B2, OTHER])).toBe('abstain');
    expect(await pick(conn('acme:device1'), [B3, OTHER])).toBe('abstain');
    expect(await pick(conn('acme:device1'), [])).toBe('abstain');
    expect(count('group_unavailable')).toBe(3);
  });

  it('stays inside the group when part of it is gone: the rest of the group takes the tenant', async () => {
    const { pick } = await make();
    for (let i = 0; i < 20; i++) expect(await pick(conn(`acme:device${i}`), [B2, B3, OTHER])).toBe(B2);
  });

  it('by default only ":" separates the tenant', async () => {
    const { pick } = await make({ tenants: TENANTS });
    expect(await pick(conn('globex:device1'))).toBe(B3);
    expect(await pick(conn('globex/device1'))).toBe('abstain');
  });

  it('a tenant name may not contain "." (convict reads keys as paths); the error still names plugin and option', () => {
    expect(() => validateOptions(tenantAffinity, { tenants: { 'acme.eu': ['b1'] } }))
      .toThrow(/^plugin "example:tenant-affinity": invalid options: .*'tenants\.acme\.eu'/);
  });

  it('takes other tenant names as they are, case included', async () => {
    const { pick } = await make({ tenants: { 'acme-eu': ['b1'], ACME: ['b3'] } });
    expect(await pick(conn('acme-eu:device1'))).toBe(B1);
    expect(await pick(conn('ACME:device1'))).toBe(B3);
    expect(await pick(conn('acme:device1'))).toBe('abstain');
  });

  it('honours a custom separator', async () => {
    const { pick, count } = await make({ tenants: TENANTS, separator: '.' });
    expect(await pick(conn('globex.device1'))).toBe(B3);
    expect(await pick(conn('globex:device1'))).toBe('abstain');
    expect(count('no_tenant')).toBe(1);
  });

  it('in a dry run (tether explain) decides the same but counts nothing', async () => {
    const { pick, count } = await make();
    expect(await pick(conn('globex:x', 'c1', true))).toBe(B3);
    expect(await pick(conn('initech:x', 'c2', true))).toBe('abstain');
    expect(await pick(conn(undefined, 'c3', true))).toBe('abstain');
    expect([count('selected'), count('unknown_tenant'), count('no_tenant')]).toEqual([0, 0, 0]);
  });
});

describe('pick: hash (the default)', () => {
  it('gives one client the same backend every time, in every instance of the plugin', async () => {
    const one = await make();
    const two = await make();
    for (let i = 0; i < 30; i++) {
      const first = await one.pick(conn('acme:d', `client-${i}`));
      expect(await one.pick(conn('acme:d', `client-${i}`))).toBe(first);
      expect(await two.pick(conn('acme:d', `client-${i}`))).toBe(first);
    }
  });

  it('spreads the clients of a tenant over its group', async () => {
    const { pick } = await make();
    const chosen = new Set<Backend | 'abstain'>();
    for (let i = 0; i < 40; i++) chosen.add(await pick(conn('acme:d', `client-${i}`)));
    expect(chosen).toEqual(new Set([B1, B2]));
  });

  it('is stable by user name for a keyless client (empty client id)', async () => {
    const { pick } = await make();
    const byName = new Map<string, Backend | 'abstain'>();
    for (let i = 0; i < 20; i++) byName.set(`acme:device${i}`, await pick(conn(`acme:device${i}`, '')));
    for (const [username, backend] of byName) expect(await pick(conn(username, ''))).toBe(backend);
    expect(new Set(byName.values())).toEqual(new Set([B1, B2]));
  });

  it('ignores load: a busy member keeps its clients', async () => {
    const { pick } = await make();
    const target = await pick(conn('acme:d', 'steady'));
    const busy = [backend('b1', target === B1 ? 1000 : 0), backend('b2', target === B2 ? 1000 : 0)];
    expect(((await pick(conn('acme:d', 'steady'), busy)) as Backend).id).toBe((target as Backend).id);
  });
});

describe('pick: least-connections', () => {
  it('takes the member with the fewest live connections, the first listed on a tie', async () => {
    const { pick } = await make({ ...OPTIONS, pick: 'least-connections' });
    const b1 = backend('b1', 5);
    const b2 = backend('b2', 2);
    expect(await pick(conn('acme:d'), [b1, b2, B3])).toBe(b2);
    const tie = [backend('b2', 1), backend('b1', 1)];
    expect(await pick(conn('acme:d'), tie)).toBe(tie[1]);
    // Load outside the group does not matter.
    expect(await pick(conn('acme:d'), [backend('b1', 9), backend('b2', 10), backend('other', 0)])).toMatchObject({ id: 'b1' });
  });
});
