import { ConnectionError } from '@tether/core';

// Why proxy-in refused a connection. Each `reason` becomes the core's counter
// `rejected_<reason>` and the `reason` field of the "connection rejected" log line.

/** A listener that requires PROXY got a connection that does not start with a header. */
export class ProxyHeaderMissingError extends ConnectionError {
  constructor(detail: string) {
    super('TETHER_ERR_PROXY_HEADER_MISSING', 'proxy_header_missing', `PROXY header required: ${detail}`);
  }
}

/** The header did not arrive, whole, within the listener's `timeout`. */
export class ProxyHeaderTimeoutError extends ConnectionError {
  constructor(timeoutMs: number, received: number) {
    super('TETHER_ERR_PROXY_HEADER_TIMEOUT', 'proxy_header_timeout', `no complete PROXY header within ${timeoutMs} ms (${received} bytes received)`);
  }
}

/** The bytes start like a PROXY header but are not a valid one (or are longer than allowed). */
export class ProxyHeaderInvalidError extends ConnectionError {
  constructor(detail: string) {
    super('TETHER_ERR_PROXY_HEADER_INVALID', 'proxy_header_invalid', `invalid PROXY header: ${detail}`);
  }
}

/** A peer outside `trustedSources` may not tell us who the client is. */
export class ProxySourceUntrustedError extends ConnectionError {
  constructor(peer: string) {
    super('TETHER_ERR_PROXY_SOURCE_UNTRUSTED', 'proxy_source_untrusted', `${peer} is not in trustedSources, so it may not send a PROXY header`);
  }
}

/** The peer closed before its header was complete; counted like the core's early closes. */
export class ProxyClientClosedError extends ConnectionError {
  constructor(received: number) {
    super('TETHER_ERR_CLIENT_CLOSED', 'client_closed_early', `client closed before a complete PROXY header (${received} bytes received)`);
  }
}
