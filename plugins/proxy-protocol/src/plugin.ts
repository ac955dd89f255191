import { defineSink, PLUGIN_API_VERSION } from '@tether/core';
import { proxyV1, proxyV2 } from './proxy-header.ts';

/**
 * Writes a PROXY protocol header before the client's bytes so the broker sees the real client and
 * listener addresses (HAProxy's `send-proxy` / `send-proxy-v2`). The version is chosen per backend
 * with its `sendProxy` setting; backends with `none` get nothing.
 */
export const proxyProtocol = defineSink({
  name: 'proxy-protocol',
  kind: 'sink',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'PROXY protocol v1/v2 header towards backends whose sendProxy is v1 or v2.',
  create(ctx) {
    return {
      attach(conn, backend, upstream) {
        if (backend.sendProxy === 'none') return upstream;
        const endpoints = {
          sourceAddress: conn.remoteAddress,
          sourcePort: conn.remotePort,
          destinationAddress: conn.localAddress,
          destinationPort: conn.localPort,
        };
        upstream.write(backend.sendProxy === 'v1' ? proxyV1(endpoints) : proxyV2(endpoints));
        ctx.stats.inc(`sent_${backend.sendProxy}`);
        return upstream;
      },
    };
  },
});
