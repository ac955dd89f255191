import { defineExtractor } from '@tether/core';

/**
 * A test extractor that reports what the pipeline's extractors see of TLS: it logs `conn.tls`
 * (at info, message "tls facts", with the client id) and returns no key, so the rest of the
 * chain decides as usual. Loaded by path: `plugins: [<this file>]`, `key: [tls-facts-probe, ...]`.
 */
export default defineExtractor({
  name: 'tls-facts-probe',
  kind: 'extractor',
  apiVersion: 1,
  create(ctx) {
    return {
      extract(conn) {
        ctx.log.info({ clientId: conn.connect.clientId, listener: conn.listener, tls: conn.tls ?? null }, 'tls facts');
        return undefined;
      },
    };
  },
});
