import { ABSTAIN, defineStrategy, selected } from '@tether/core';
import { leastLoaded, offeredMembers, rendezvous, tenantOf } from './tenant.ts';

export interface TenantAffinityOptions {
  /** Tenant name → names of the backends that serve it. */
  tenants: Record<string, string[]>;
  /** What ends the tenant prefix of a user name: one string or a list of them. */
  separator: string | string[];
  /** How to choose among a tenant's available backends. */
  pick: 'hash' | 'least-connections';
}

/** Attribute other plugins (a sink, a later strategy) can read; namespaced as the contract asks. */
export const TENANT_ATTRIBUTE = 'tenant-affinity:tenant';

/** Convict format of `tenants`: throwing here makes Tether refuse to start, naming plugin and option. */
function tenantsFormat(value: unknown): void {
  if (value === null || value === undefined) throw new Error('is required: a mapping of tenant name to a list of backend names, e.g. { acme: [b1, b2] }');
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new Error('must be a mapping of tenant name to a list of backend names, e.g. { acme: [b1, b2] }');
  }
  const entries = Object.entries(value);
  if (entries.length === 0) throw new Error('must name at least one tenant (with none, this strategy would only ever abstain)');
  for (const [tenant, group] of entries) {
    if (!Array.isArray(group) || group.length === 0 || !group.every((name) => typeof name === 'string' && name.length > 0)) {
      throw new Error(`tenant "${tenant}" must map to a non-empty list of backend names`);
    }
  }
}

function separatorFormat(value: unknown): void {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new Error('must be a non-empty string or a non-empty list of non-empty strings, e.g. ":" or [":", "/"]');
  }
}

/**
 * Routes each client by the tenant prefix of its MQTT user name (`acme:device42` → `acme`) to the
 * backends configured for that tenant. For a user name without a known tenant, or when none of
 * the tenant's backends is available, it abstains: the rest of the chain decides, exactly as for
 * a client of a tenant it was never told about.
 */
const tenantAffinity = defineStrategy<TenantAffinityOptions>({
  // Namespaced so a future built-in of the same name cannot collide with it.
  name: 'example:tenant-affinity',
  kind: 'strategy',
  // A literal, not PLUGIN_API_VERSION: imported from the host's @tether/core, that constant would
  // always equal the host's version and the registry's compatibility check could never fail.
  apiVersion: 1,
  version: '1.0.0',
  description: 'Sends each tenant (user name prefix) to its own backend group; abstains for everyone else.',
  options: {
    // Defaults of these two are null and a string on purpose: convict JSON-parses a string given for an
    // option whose default is an object or array, so `separator: "/"` would fail with a JSON error.
    tenants: { doc: 'Required. Tenant name → list of backend names, e.g. { acme: [b1, b2], globex: [b3] }.', format: tenantsFormat, default: null },
    separator: { doc: 'What ends the tenant prefix of the user name: a string, or a list of strings of which the earliest match wins.', format: separatorFormat, default: ':' },
    pick: {
      doc: 'hash: the same client always gets the same backend of its group (rendezvous hash of the key); least-connections: the emptiest one.',
      format: ['hash', 'least-connections'],
      default: 'hash',
    },
  },
  create(ctx, options) {
    const separators = Array.isArray(options.separator) ? options.separator : [options.separator];
    // A Map, not the options object: a user name such as "constructor:x" must not find Object's own properties.
    const groups = new Map<string, readonly string[]>();
    for (const [tenant, group] of Object.entries(options.tenants)) {
      // Such a tenant could never be matched; better a clear error at start than a silent miss per connection.
      const clash = separators.find((s) => tenant.includes(s));
      if (clash !== undefined) throw new Error(`tenant "${tenant}" contains the separator "${clash}", so no user name can ever match it`);
      groups.set(tenant, Object.freeze([...group]));
    }
    ctx.log.debug({ tenants: [...groups.keys()], separators, pick: options.pick }, 'tenant groups loaded');

    return {
      select(conn, backends) {
        // `tether explain` runs select with dryRun: decide as usual, but count nothing.
        const count = (name: string): void => {
          if (!conn.dryRun) ctx.stats.inc(name);
        };
        const username = conn.connect.username;
        const tenant = tenantOf(username, separators);
        if (tenant === undefined) {
          count('no_tenant');
          return ABSTAIN;
        }
        const group = groups.get(tenant);
        if (!group) {
          count('unknown_tenant');
          return ABSTAIN;
        }
        conn.attributes.set(TENANT_ATTRIBUTE, tenant);
        const members = offeredMembers(group, backends);
        // The stickiness key (client id by default) keeps a client on one member; a keyless client
        // (empty client id) still gets a stable answer from its user name.
        const backend = options.pick === 'hash' ? rendezvous(conn.key ?? username!, members) : leastLoaded(members);
        if (!backend) {
          // Every backend of the group is down, drained, full or has just refused this connection.
          count('group_unavailable');
          ctx.log.debug({ conn: conn.id, tenant, group }, 'no backend of the tenant group is available; deferring to the rest of the chain');
          return ABSTAIN;
        }
        count('selected');
        return selected(backend);
      },
    };
  },
});

export { tenantAffinity };
export default tenantAffinity;
