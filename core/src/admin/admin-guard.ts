import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { HostPort } from '../net/address.ts';
import { isLoopbackHost, isWildcardHost } from '../net/loopback.ts';
import type { AdminToken } from './admin-token.ts';

/** Why a request is refused before it reaches a route: the status, a reason for the JSON body, extra headers. */
export interface Refusal {
  readonly status: 401 | 403 | 415;
  readonly reason: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface AdminGuardOptions {
  /** Where the admin API is bound (the real port). */
  readonly bound: HostPort;
  readonly token?: AdminToken | undefined;
  /** Extra names the Host header may carry (admin.hosts). */
  readonly hosts?: readonly string[];
}

/** Methods that read only; every other one changes something and must come from the admin's own origin, as JSON. */
const SAFE_METHODS = new Set(['GET', 'HEAD']);
const REALM = 'Bearer realm="tether-admin"';

/**
 * The checks every admin request passes before its route runs, in this order:
 * 1. `Host` names this admin API (its own address, `localhost` on loopback, or an `admin.hosts`
 *    name, with its port): a page whose DNS name was rebound to 127.0.0.1 is refused (403).
 * 2. A request that changes something and carries an `Origin` comes from this admin API's own
 *    origin (403): browsers send `Origin` on every cross-origin POST/PUT/DELETE, including the
 *    "simple" text/plain ones that skip the CORS preflight.
 * 3. With a token, `Authorization: Bearer TOKEN` matches it (401 with `WWW-Authenticate`); so does
 *    `Authorization: Basic` with the token as the password (any user name), which is how a browser
 *    sends it to the dashboard after its own login prompt (dashboard-assets.ts).
 * 4. A request that changes something says `Content-Type: application/json` (415): a type a web
 *    page cannot send cross-origin without a preflight, which this API never grants.
 */
export class AdminGuard {
  readonly #port: number;
  readonly #names: ReadonlySet<string>;
  /** Bound to every interface: any IP literal of this machine may appear in Host. */
  readonly #anyAddress: boolean;
  readonly #token: AdminToken | undefined;

  constructor(options: AdminGuardOptions) {
    const { bound } = options;
    this.#port = bound.port;
    this.#anyAddress = isWildcardHost(bound.host);
    const names = new Set([normalizeHost(bound.host), ...(options.hosts ?? []).map(normalizeHost)]);
    if (this.#anyAddress || isLoopbackHost(bound.host)) names.add('localhost');
    this.#names = names;
    this.#token = options.token;
  }

  check(method: string, headers: IncomingHttpHeaders): Refusal | undefined {
    const host = headers.host;
    if (!this.allowsHost(host)) {
      return { status: 403, reason: `the Host header ${JSON.stringify(host ?? '')} does not name this admin API; use its address (or list the name in admin.hosts)` };
    }
    const changes = !SAFE_METHODS.has(method);
    const origin = headers.origin;
    if (changes && origin !== undefined && !this.#ownOrigin(origin)) {
      return { status: 403, reason: `cross-origin request refused: Origin ${JSON.stringify(origin)} is not this admin API's own` };
    }
    if (this.#token) {
      const presented = presentedToken(headers.authorization);
      if (presented === undefined) {
        return { status: 401, reason: 'this admin API needs a token: send Authorization: Bearer TOKEN (tether commands: --token-file FILE or TETHER_ADMIN_TOKEN)', headers: { 'www-authenticate': REALM } };
      }
      if (!this.#token.matches(presented)) {
        return { status: 401, reason: 'wrong admin token', headers: { 'www-authenticate': `${REALM}, error="invalid_token"` } };
      }
    }
    if (changes && mediaType(headers['content-type']) !== 'application/json') {
      return { status: 415, reason: `a request that changes something must send a JSON body with Content-Type: application/json (got ${JSON.stringify(headers['content-type'] ?? 'none')})` };
    }
    return undefined;
  }

  /** Whether a Host header (or an Origin's host) names this admin API. */
  allowsHost(value: string | undefined): boolean {
    const parsed = value === undefined ? undefined : splitHost(value);
    if (!parsed || parsed.port !== this.#port) return false;
    return this.#names.has(parsed.host) || (this.#anyAddress && isIP(parsed.host) !== 0);
  }

  #ownOrigin(origin: string): boolean {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false; // "null" (a sandboxed frame, a file: page) and anything unparsable
    }
    return url.protocol === 'http:' && url.pathname === '/' && this.allowsHost(url.host);
  }
}

/** The token of `Bearer TOKEN`, or the password of `Basic base64(user:password)`; undefined for anything else. */
function presentedToken(header: string | undefined): string | undefined {
  const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '')?.[1];
  if (bearer !== undefined) return bearer;
  const basic = /^Basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(header ?? '')?.[1];
  if (basic === undefined) return undefined;
  const pair = Buffer.from(basic, 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  return colon < 0 ? undefined : pair.slice(colon + 1);
}

function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
}

/** `name:port`, `[v6]:port` or a name alone (port 80), lower-cased; undefined when malformed. */
function splitHost(value: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  return { host: normalizeHost(m[1]!), port: m[2] === undefined ? 80 : Number(m[2]) };
}

/** The media type of a Content-Type header, without parameters (`; charset=utf-8`). */
function mediaType(header: string | undefined): string | undefined {
  return header?.split(';', 1)[0]!.trim().toLowerCase();
}
