import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { describe } from '../errors.ts';
import type { AdminState, TableQuery } from '../plugin.ts';
import { listen } from '../net/listen.ts';
import type { HostPort } from '../net/address.ts';
import type { Exposition } from '../metrics/exposition.ts';
import type { AdminSource } from './admin-source.ts';

export interface AdminDeps {
  readonly log: Logger;
  /** What the API shows: this process (localAdminSource) or every worker of a cluster (ClusterAdmin). */
  readonly source: AdminSource;
}

const MAX_BODY = 1 << 20;
const ADMIN_STATES: readonly AdminState[] = ['ready', 'drain', 'maint'];

/**
 * The admin HTTP API (HAProxy's runtime API): GET /table, /stats, /backends; POST
 * /backends/NAME/state with ready, drain or maint (HAProxy `set server ... state`); POST /explain
 * with a hex first packet. Off unless configured; it has no authentication, so keep it on loopback.
 * With several workers the primary serves it and every answer covers all of them.
 */
export class AdminServer {
  readonly #deps: AdminDeps;
  readonly #server: Server;

  constructor(deps: AdminDeps) {
    this.#deps = deps;
    this.#server = createServer((req, res) => {
      this.#route(req, res).catch((err: unknown) => send(res, 500, { error: describe(err) }));
    });
  }

  async start(address: HostPort): Promise<HostPort> {
    await listen(this.#server, address, '--admin (TETHER_ADMIN, config key admin)');
    const bound = this.#server.address();
    return typeof bound === 'object' && bound ? { host: bound.address, port: bound.port } : address;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const { source } = this.#deps;
    if (req.method === 'GET' && url.pathname === '/table') {
      return send(res, 200, { tables: await source.tables(tableQuery(url.searchParams)) });
    }
    if (req.method === 'GET' && url.pathname === '/stats') return send(res, 200, { counters: await source.stats() });
    if (req.method === 'GET' && url.pathname === '/backends') return send(res, 200, { backends: await source.backends() });
    if (req.method === 'GET' && url.pathname === '/metrics') return sendMetrics(res, await source.metrics());
    const stateRoute = /^\/backends\/([^/]+)\/state$/.exec(url.pathname);
    if (req.method === 'POST' && stateRoute) {
      const id = decodeURIComponent(stateRoute[1]!);
      const state = (await readBody(req)).trim();
      if (!ADMIN_STATES.includes(state as AdminState)) {
        const known = (await source.backends()).some((b) => b.id === id);
        if (!known) return send(res, 404, { error: `no backend named "${id}"`, backends: (await source.backends()).map((b) => b.id) });
        return send(res, 400, { error: `state must be one of ${ADMIN_STATES.join(', ')}` });
      }
      const result = await source.setState(id, state as AdminState);
      if (!result.found) return send(res, 404, { error: `no backend named "${id}"`, backends: (await source.backends()).map((b) => b.id) });
      if (result.changed) this.#deps.log.info({ backend: id, state }, 'backend state set by admin');
      return send(res, 200, { backend: result.backend, changed: result.changed });
    }
    if (req.method === 'POST' && url.pathname === '/explain') {
      const body = (await readBody(req)).trim();
      if (!/^([0-9a-fA-F]{2})*$/.test(body)) return send(res, 400, { error: 'body must be the packet as hex' });
      return send(res, 200, await source.explain(Buffer.from(body, 'hex')));
    }
    send(res, 404, { error: 'not found', routes: ['GET /table', 'GET /stats', 'GET /backends', 'GET /metrics', 'POST /backends/NAME/state', 'POST /explain'] });
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

/** GET /metrics: the Prometheus text exposition, or 404 when metrics are turned off. */
function sendMetrics(res: ServerResponse, exposition: Exposition | undefined): void {
  if (!exposition) return send(res, 404, { error: 'metrics are turned off (metrics.enabled: false)' });
  res.writeHead(200, { 'content-type': exposition.contentType, 'content-length': Buffer.byteLength(exposition.body) });
  res.end(exposition.body);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
