import type { BackendAddress } from './backends.ts';

/**
 * HAProxy's equivalent of the seed configuration (../shared/reference/sticky-session-article.md),
 * as the HAProxy baseline runs it:
 *
 * - the seed's stick table (`type string len 32 size 100k expire 30m`) and
 *   `stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)`;
 * - plus `tcp-request inspect-delay` and an accept rule on `mqtt_is_valid`, so HAProxy waits for
 *   the whole CONNECT before it chooses a server (the seed omits it, which makes the stick key
 *   depend on how the first bytes happen to arrive), like Tether's sniff;
 * - without send-proxy-v2 (the brokers of the benchmark do not expect a PROXY header) and
 *   without logging (Tether runs at log level warn: neither logs each connection);
 * - one thread, the fair comparison with Tether's one event loop; the seed's balance (roundrobin,
 *   HAProxy's default) for clients not yet in the table; timeouts as the seed.
 *
 * maxconn is left to HAProxy, which derives it from the file-descriptor limit.
 */
export function haproxyConfig(port: number, backends: readonly BackendAddress[]): string {
  return [
    'global',
    '  nbthread 1',
    'defaults',
    '  mode tcp',
    '  timeout connect 30s',
    '  timeout client 600s',
    '  timeout server 600s',
    'frontend mqtt',
    `  bind 127.0.0.1:${port}`,
    '  tcp-request inspect-delay 5s',
    '  tcp-request content accept if { req.payload(0,0),mqtt_is_valid }',
    '  default_backend brokers',
    'backend brokers',
    '  stick-table type string len 32 size 100k expire 30m',
    '  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)',
    ...backends.map((b) => `  server ${b.name} ${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`),
    '',
  ].join('\n');
}
