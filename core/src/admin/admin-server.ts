import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { isWeight, WEIGHT_MAX, WEIGHT_MIN } from '../backend/weight.ts';
import { requireTokenOffLoopback } from '../config/admin-config.ts';
import { describe } from '../errors.ts';
import type { AdminState, TableQuery } from '../plugin.ts';
import { listen } from '../net/listen.ts';
import type { HostPort } from '../net/address.ts';
import { AdminGuard } from './admin-guard.ts';
import { DASHBOARD_CHALLENGE, DASHBOARD_HEADERS, dashboardAsset, dashboardRefusalPage, isDashboardPath } from './dashboard-assets.ts';
import type { AdminSource } from './admin-source.ts';
import type { AdminToken } from './admin-token.ts';

export interface AdminDeps {
  readonly log: Logger;
  /** What the API shows: this process (localAdminSource) or every worker of a cluster (ClusterAdmin). */
  readonly source: AdminSource;
  /** Required on every request when set (admin.token / admin.tokenFile); required off loopback. */
  readonly token?: AdminToken | undefined;
  /** Extra names the Host header may carry (admin.hosts). */
  readonly hosts?: readonly string[];
}

const MAX_BODY = 1 << 20;
const ADMIN_STATES: readonly AdminState[] = ['ready', 'drain', 'maint'];

/** A request the API answers with an error status and a JSON reason (plus any extra fields). */
class AdminHttpError extends Error {
  readonly status: number;
  readonly extra: Readonly<Record<string, unknown>>;
  constructor(status: number, message: string, extra: Readonly<Record<string, unknown>> = {}) {
    super(message);
    this.status = status;
    this.extra = extra;
  }
}

interface RouteContext {
  /** The path's captured segments, URL-decoded. */
  readonly params: readonly string[];
  readonly url: URL;
  /** The JSON body of a request that changes something (`{}` when empty); `{}` for GET. */
  readonly body: Readonly<Record<string, unknown>>;
}

interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** As listed to the user: `POST /backends/NAME/state`. */
  readonly path: string;
  readonly pattern: RegExp;
  /** The body fields it accepts; any other is a 400. */
  readonly fields?: readonly string[];
  readonly handle: (ctx: RouteContext) => Promise<Reply>;
}

interface Reply {
  readonly status: number;
  readonly body: unknown;
  /** A reply that is not JSON (GET /metrics): its content type and text, sent as they are. */
  readonly text?: { readonly contentType: string; readonly body: string; readonly headers?: Readonly<Record<string, string>> };
}

const ok = (body: unknown): Reply => ({ status: 200, body });

/**
 * The admin HTTP API (HAProxy's runtime API), and its dashboard at GET / (dashboard-assets.ts).
 * Reads: GET /table, /stats, /backends. Changes, each with a JSON body: POST /backends/NAME/state `{"state":"drain"}` (HAProxy `set server state`),
 * POST /backends/NAME/weight `{"weight":N}` (`set server weight`), PUT /table/entries/KEY
 * `{"backend":NAME}` (`set table`), DELETE /table/entries/KEY, POST /table/clear
 * `{"backend"?:NAME}` (`clear table`), POST /explain `{"hex":…}`, POST /reload, GET /status. Every request first passes the
 * AdminGuard (Host, Origin, token, Content-Type). Off unless configured; loopback only unless a
 * token is set. With several workers the primary serves it and every answer covers all of them.
 */
export class AdminServer {
  readonly #deps: AdminDeps;
  readonly #server: Server;
  readonly #routes: readonly Route[];
  #guard: AdminGuard | undefined;
  #bound: HostPort | undefined;

  constructor(deps: AdminDeps) {
    this.#deps = deps;
    this.#routes = this.#defineRoutes();
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => send(res, 500, { error: describe(err) }));
    });
  }

  /** Binds the API; refuses (before binding) a non-loopback address without a token. */
  async start(address: HostPort): Promise<HostPort> {
    requireTokenOffLoopback(address, this.#deps.token);
    await listen(this.#server, address, '--admin (TETHER_ADMIN, config key admin.listen)');
    const bound = this.#server.address();
    const actual = typeof bound === 'object' && bound ? { host: bound.address, port: bound.port } : address;
    this.#bound = actual;
    this.#guard = new AdminGuard({ bound: actual, token: this.#deps.token, hosts: this.#deps.hosts ?? [] });
    return actual;
  }

  /** A reload changed the token or the extra host names: the next request is checked against them. */
  setAccess(token: AdminToken | undefined, hosts: readonly string[]): void {
    if (!this.#bound) return;
    requireTokenOffLoopback(this.#bound, token);
    this.#guard = new AdminGuard({ bound: this.#bound, token, hosts });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://admin');
    const refusal = this.#guard!.check(method, req.headers);
    if (refusal) {
      // Never the Authorization header: only what was wrong, in our own words.
      this.#deps.log.warn({ method, path: url.pathname, status: refusal.status, reason: refusal.reason, remote: req.socket.remoteAddress }, 'admin request refused');
      req.resume();
      if (refusal.status === 401 && isDashboardPath(url.pathname)) {
        // A browser opening the dashboard: ask it for the token with its own login prompt.
        const page = dashboardRefusalPage(refusal.reason);
        res.writeHead(401, { ...DASHBOARD_HEADERS, 'www-authenticate': DASHBOARD_CHALLENGE, 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(page) });
        res.end(page);
        return;
      }
      return send(res, refusal.status, { error: refusal.reason }, refusal.headers);
    }
    try {
      const { status, body, text } = await this.#dispatch(method, url, req);
      if (text) {
        res.writeHead(status, { ...text.headers, 'content-type': text.contentType, 'content-length': Buffer.byteLength(text.body) });
        res.end(text.body);
      } else send(res, status, body);
    } catch (err) {
      if (!(err instanceof AdminHttpError)) throw err;
      req.resume();
      const headers: Record<string, string> = err.status === 405 ? { allow: String(err.extra.allow) } : {};
      send(res, err.status, { error: err.message, ...err.extra }, headers);
    }
  }

  async #dispatch(method: string, url: URL, req: IncomingMessage): Promise<Reply> {
    const onPath = this.#routes
      .map((route) => ({ route, match: route.pattern.exec(url.pathname) }))
      .filter((m): m is { route: Route; match: RegExpExecArray } => m.match !== null);
    if (onPath.length === 0) throw new AdminHttpError(404, 'not found', { routes: this.#routes.map((r) => `${r.method} ${r.path}`) });
    const hit = onPath.find((m) => m.route.method === method);
    if (!hit) {
      const allow = onPath.map((m) => m.route.method).join(', ');
      throw new AdminHttpError(405, `${method} is not allowed on ${url.pathname}; use ${allow}`, { allow });
    }
    const params = hit.match.slice(1).map((p) => decodeURIComponent(p));
    const body = method === 'GET' ? {} : await readJsonBody(req, hit.route.fields ?? []);
    return hit.route.handle({ params, url, body });
  }

  #defineRoutes(): Route[] {
    const { source, log } = this.#deps;
    const unknownBackend = async (id: string): Promise<never> => {
      throw new AdminHttpError(404, `no backend named "${id}"`, { backends: (await source.backends()).map((b) => b.id) });
    };
    const noTable = (): never => {
      throw new AdminHttpError(409, 'no strategy in the select chain keeps a table');
    };
    const page = async ({ url }: RouteContext): Promise<Reply> => {
      const asset = (await dashboardAsset(url.pathname))!;
      return { status: 200, body: undefined, text: { ...asset, headers: DASHBOARD_HEADERS } };
    };
    return [
      { method: 'GET', path: '/table', pattern: /^\/table$/, handle: async ({ url }) => ok({ tables: await source.tables(tableQuery(url.searchParams)) }) },
      { method: 'GET', path: '/stats', pattern: /^\/stats$/, handle: async () => ok({ counters: await source.stats() }) },
      { method: 'GET', path: '/backends', pattern: /^\/backends$/, handle: async () => ok({ backends: await source.backends() }) },
      {
        method: 'POST', path: '/backends/NAME/state', pattern: /^\/backends\/([^/]+)\/state$/, fields: ['state'],
        handle: async ({ params: [id], body }) => {
          const { state } = body;
          if (!ADMIN_STATES.includes(state as AdminState)) {
            if (!(await source.backends()).some((b) => b.id === id)) return unknownBackend(id!);
            throw new AdminHttpError(400, `state must be one of ${ADMIN_STATES.join(', ')}`);
          }
          const result = await source.setState(id!, state as AdminState);
          if (!result.found) return unknownBackend(id!);
          if (result.changed) log.info({ backend: id, state }, 'backend state set by admin');
          return ok({ backend: result.backend, changed: result.changed });
        },
      },
      {
        method: 'POST', path: '/backends/NAME/weight', pattern: /^\/backends\/([^/]+)\/weight$/, fields: ['weight'],
        handle: async ({ params: [id], body }) => {
          const { weight } = body;
          if (!isWeight(weight)) {
            if (!(await source.backends()).some((b) => b.id === id)) return unknownBackend(id!);
            throw new AdminHttpError(400, `weight must be a whole number from ${WEIGHT_MIN} to ${WEIGHT_MAX}`);
          }
          const result = await source.setWeight(id!, weight);
          if (!result.found) return unknownBackend(id!);
          if (result.changed) log.info({ backend: id, weight }, 'backend weight set by admin');
          return ok({ backend: result.backend, changed: result.changed });
        },
      },
      {
        method: 'PUT', path: '/table/entries/KEY', pattern: /^\/table\/entries\/([^/]+)$/, fields: ['backend'],
        handle: async ({ params: [key], body }) => {
          const backend = body.backend;
          if (typeof backend !== 'string' || !backend) throw new AdminHttpError(400, 'body must name the backend: {"backend": NAME}');
          const result = await source.setEntry(key!, backend);
          if (!result.found) return unknownBackend(backend);
          if (result.tables === 0) return noTable();
          log.info({ table: { key }, backend }, 'table entry set by admin');
          return ok({ key, backend, tables: result.tables });
        },
      },
      {
        method: 'DELETE', path: '/table/entries/KEY', pattern: /^\/table\/entries\/([^/]+)$/,
        handle: async ({ params: [key] }) => {
          const result = await source.deleteEntry(key!);
          if (result.tables === 0) return noTable();
          if (result.changed === 0) throw new AdminHttpError(404, `no table has an entry for "${key}"`);
          log.info({ table: { key } }, 'table entry deleted by admin');
          return ok({ key, deleted: true, tables: result.tables });
        },
      },
      {
        method: 'POST', path: '/table/clear', pattern: /^\/table\/clear$/, fields: ['backend'],
        handle: async ({ body }) => {
          const backend = body.backend;
          if (backend !== undefined && (typeof backend !== 'string' || !backend)) throw new AdminHttpError(400, 'backend, when given, must be a backend name');
          const result = await source.clearEntries(backend);
          if (!result.found) return unknownBackend(backend!);
          if (result.tables === 0) return noTable();
          log.info({ backend, cleared: result.changed }, 'table cleared by admin');
          return ok({ cleared: result.changed, tables: result.tables, ...(backend !== undefined ? { backend } : {}) });
        },
      },
      {
        method: 'GET', path: '/metrics', pattern: /^\/metrics$/,
        handle: async () => {
          const exposition = await source.metrics();
          if (!exposition) throw new AdminHttpError(404, 'metrics are turned off (metrics.enabled: false)');
          return { status: 200, body: undefined, text: { contentType: exposition.contentType, body: exposition.body } };
        },
      },
      { method: 'GET', path: '/status', pattern: /^\/status$/, handle: async () => ok(await source.status()) },
      {
        method: 'POST', path: '/reload', pattern: /^\/reload$/,
        handle: async () => {
          const result = await source.reload('admin');
          // 422: the configuration was read and refused; the errors say why, and nothing changed.
          return { status: result.ok ? 200 : 422, body: result };
        },
      },
      {
        method: 'POST', path: '/explain', pattern: /^\/explain$/, fields: ['hex'],
        handle: async ({ body }) => {
          const hex = typeof body.hex === 'string' ? body.hex.replace(/\s+/g, '') : undefined;
          if (hex === undefined || !/^([0-9a-fA-F]{2})*$/.test(hex)) throw new AdminHttpError(400, 'body must be {"hex": "…"}: the packet as an even-length hexadecimal string');
          return ok(await source.explain(Buffer.from(hex, 'hex')));
        },
      },
      // The dashboard: a page and its files, reading and changing through the routes above.
      { method: 'GET', path: '/', pattern: /^\/$/, handle: page },
      { method: 'GET', path: '/dashboard.js', pattern: /^\/dashboard\.js$/, handle: page },
      { method: 'GET', path: '/dashboard.css', pattern: /^\/dashboard\.css$/, handle: page },
      { method: 'GET', path: '/favicon.svg', pattern: /^\/favicon\.svg$/, handle: page },
    ];
  }
}

/** `?limit=N&cursor=C&key=K` of GET /table. */
function tableQuery(params: URLSearchParams): TableQuery {
  const limit = params.has('limit') ? Number(params.get('limit')) : undefined;
  const cursor = params.get('cursor') ?? undefined;
  const key = params.get('key') ?? undefined;
  return {
    ...(limit !== undefined && Number.isFinite(limit) ? { limit } : {}),
    ...(cursor !== undefined ? { cursor } : {}),
    ...(key !== undefined ? { key } : {}),
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The request's body as a JSON object (`{}` when empty) holding only `fields`; 400 or 413 otherwise. */
async function readJsonBody(req: IncomingMessage, fields: readonly string[]): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new AdminHttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new AdminHttpError(400, `body is not valid JSON: ${describe(err)}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AdminHttpError(400, 'body must be a JSON object');
  const unknown = Object.keys(body).filter((k) => !fields.includes(k));
  if (unknown.length > 0) {
    throw new AdminHttpError(400, `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}${fields.length ? ` (allowed: ${fields.join(', ')})` : ' (this request takes no body)'}`);
  }
  return body as Record<string, unknown>;
}
