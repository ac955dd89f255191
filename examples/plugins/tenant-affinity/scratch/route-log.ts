import { defineSink } from '@tether/core';

/**
 * Logs where each connection goes, with the tenant that tenant-affinity recorded, and counts
 * tenanted and other connections. It writes nothing to the broker and returns the stream unchanged.
 */
export default defineSink<{ level: 'info' | 'debug' }>({
  name: 'acme:route-log',
  kind: 'sink',
  apiVersion: 1,
  version: '1.0.0',
  description: 'One log line per routed connection, with its tenant; sends nothing upstream.',
  options: {
    level: { doc: 'Log level of the line.', format: ['info', 'debug'], default: 'info' },
  },
  create(ctx, { level }) {
    return {
      attach(conn, backend, upstream) {
        const tenant = conn.attributes.get('tenant-affinity:tenant');
        ctx.log[level]({ conn: conn.id, backend: backend.id, key: conn.key, tenant }, 'routed');
        ctx.stats.inc(tenant === undefined ? 'other' : 'tenanted');
        return upstream;
      },
    };
  },
});
