import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { BackendPool } from '../backend/backend-pool.ts';
import { describe } from '../errors.ts';
import type { ExplainResult } from '../explain.ts';
import type { AdminState } from '../plugin.ts';
import { listen } from '../net/listen.ts';
import type { HostPort } from '../net/address.ts';
import type { StrategyChain } from '../pipeline/strategy-chain.ts';
import type { Stats } from '../stats.ts';

export interface AdminDeps {
  readonly log: Logger;
  readonly stats: Stats;
  readonly pool: BackendPool;
  readonly strategies: StrategyChain;
  readonly explain: (bytes: Buffer) => Promise<ExplainResult>;
}

const MAX_BODY = 1 << 20;
const ADMIN_STATES: readonly AdminState[] = ['ready', 'drain', 'maint'];

/**
 * The admin HTTP API (HAProxy's runtime API): GET /table, /stats, /backends; POST
 * /backends/NAME/state with ready, drain or maint (HAProxy `set server ... state`); POST /explain
 * with a hex first packet. Off unless configured; it has no authentication, so keep it on loopback.
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
    const { stats, pool, strategies } = this.#deps;
    if (req.method === 'GET' && url.pathname === '/table') {
      const limit = url.searchParams.has('limit') ? Number(url.searchParams.get('limit')) : undefined;
      return send(res, 200, { tables: strategies.tables(limit) });
    }
    if (req.method === 'GET' && url.pathname === '/stats') return send(res, 200, { counters: stats.snapshot() });
    if (req.method === 'GET' && url.pathname === '/backends') return send(res, 200, { backends: pool.all() });
    const stateRoute = /^\/backends\/([^/]+)\/state$/.exec(url.pathname);
    if (req.method === 'POST' && stateRoute) {
      const id = decodeURIComponent(stateRoute[1]!);
      const state = (await readBody(req)).trim();
      if (!pool.get(id)) return send(res, 404, { error: `no backend named "${id}"`, backends: pool.all().map((b) => b.id) });
      if (!ADMIN_STATES.includes(state as AdminState)) return send(res, 400, { error: `state must be one of ${ADMIN_STATES.join(', ')}` });
      const changed = pool.setAdminState(id, state as AdminState);
      if (changed) this.#deps.log.info({ backend: id, state }, 'backend state set by admin');
      return send(res, 200, { backend: pool.get(id), changed });
    }
    if (req.method === 'POST' && url.pathname === '/explain') {
      const body = (await readBody(req)).trim();
      if (!/^([0-9a-fA-F]{2})*$/.test(body)) return send(res, 400, { error: 'body must be the packet as hex' });
      return send(res, 200, await this.#deps.explain(Buffer.from(body, 'hex')));
    }
    send(res, 404, { error: 'not found', routes: ['GET /table', 'GET /stats', 'GET /backends', 'POST /backends/NAME/state', 'POST /explain'] });
  }
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
