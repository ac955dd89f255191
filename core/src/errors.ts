/**
 * Typed errors. Each has a stable `code` (for logs, counters and tests) and, where it concerns one
 * connection, a short `reason` used as the close-reason counter name.
 */
export class TetherError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Errors that end one connection. `reason` is the snake_case counter and log field. */
export class ConnectionError extends TetherError {
  readonly reason: string;
  constructor(code: string, reason: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.reason = reason;
  }
}

export class ConfigError extends TetherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TETHER_ERR_CONFIG', message, options);
  }
}

export class PluginError extends TetherError {
  readonly plugin: string;
  readonly phase: string;
  constructor(code: string, plugin: string, phase: string, message: string, options?: { cause?: unknown }) {
    super(code, `plugin "${plugin}": ${message}`, options);
    this.plugin = plugin;
    this.phase = phase;
  }
}

export class SniffTimeoutError extends ConnectionError {
  constructor(timeoutMs: number, received: number) {
    super('TETHER_ERR_SNIFF_TIMEOUT', 'sniff_timeout', `no complete CONNECT within ${timeoutMs} ms (${received} bytes received)`);
  }
}

export class SniffTooLargeError extends ConnectionError {
  constructor(declared: number, maxBytes: number) {
    super('TETHER_ERR_SNIFF_TOO_LARGE', 'sniff_too_large', `first packet of ${declared} bytes exceeds sniff.maxBytes (${maxBytes})`);
  }
}

export class SniffInvalidError extends ConnectionError {
  constructor(detail: string) {
    super('TETHER_ERR_SNIFF_INVALID', 'sniff_invalid', `first packet is not a valid MQTT CONNECT: ${detail}`);
  }
}

/**
 * A CONNECT that mqtt-packet parses but the specification calls malformed (core/src/mqtt/connect-check.ts):
 * refused before any byte reaches a broker, counted by rule (`connect_utf8`, `connect_trailing_bytes`,
 * `connect_not_shortest`, `connect_property`).
 */
export class ConnectMalformedError extends ConnectionError {
  readonly rule: string;
  constructor(rule: string, detail: string) {
    super('TETHER_ERR_CONNECT_MALFORMED', `connect_${rule}`, `malformed CONNECT: ${detail}`);
    this.rule = rule;
  }
}

/** A strategy refused the connection (Selection `refuse`): answered with CONNACK "server busy". */
export class ClientRefusedError extends ConnectionError {
  readonly plugin: string;
  /** Set when the client sent a valid CONNECT (always, from a strategy), so it gets a CONNACK. */
  readonly protocolVersion: 3 | 4 | 5;
  constructor(plugin: string, reason: string, detail: string, protocolVersion: 3 | 4 | 5) {
    super('TETHER_ERR_CLIENT_REFUSED', reason, `refused by ${plugin}: ${detail}`);
    this.plugin = plugin;
    this.protocolVersion = protocolVersion;
  }
}

export class ClientClosedError extends ConnectionError {
  constructor(received: number) {
    super('TETHER_ERR_CLIENT_CLOSED', 'client_closed_early', `client closed before a complete CONNECT (${received} bytes received)`);
  }
}

export class NoBackendError extends ConnectionError {
  /** Set when the client sent a valid CONNECT, so it can be answered with a CONNACK. */
  readonly protocolVersion: 3 | 4 | 5 | undefined;
  constructor(detail: string, protocolVersion?: 3 | 4 | 5) {
    super('TETHER_ERR_NO_BACKEND', 'no_backend', `no backend can take the connection: ${detail}`);
    this.protocolVersion = protocolVersion;
  }
}

/**
 * A WebSocket opening Tether refuses (a plain HTTP request, a wrong path or subprotocol, a frame
 * that breaks RFC 6455 or MQTT's WebSocket rules). `reply` is what the client is told before the
 * close: an HTTP error response before the upgrade, a Close frame after it.
 */
export class WebSocketRejectError extends ConnectionError {
  readonly reply: Buffer | undefined;
  constructor(reason: string, message: string, reply: Buffer | undefined) {
    super('TETHER_ERR_WEBSOCKET', reason, message);
    this.reply = reply;
  }
}

export class ListenError extends TetherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TETHER_ERR_LISTEN', message, options);
  }
}

/** A worker of `tether start --workers N` could not start (its own message), or workers keep crashing. */
export class ClusterError extends TetherError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TETHER_ERR_CLUSTER', message, options);
  }
}

export class UpstreamConnectError extends ConnectionError {
  readonly backend: string;
  constructor(backend: string, detail: string, options?: { cause?: unknown }) {
    super('TETHER_ERR_UPSTREAM_CONNECT', 'upstream_connect', `backend ${backend}: ${detail}`, options);
    this.backend = backend;
  }
}

/** Something a plugin threw during a per-connection hook; the connection closes, the process lives. */
export class PluginHookError extends ConnectionError {
  constructor(plugin: string, hook: string, cause: unknown) {
    super('TETHER_ERR_PLUGIN_HOOK', 'plugin_error', `plugin "${plugin}" failed in ${hook}: ${describe(cause)}`, { cause });
  }
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
