import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { describe } from '../errors.ts';
import type { HostPort } from '../net/address.ts';
import { listen } from '../net/listen.ts';
import type { Exposition } from './exposition.ts';

/**
 * The `metrics.listen` endpoint: a read-only HTTP server that answers `GET /metrics` (and HEAD)
 * and nothing else, like HAProxy's Prometheus exporter on its own frontend. It changes nothing
 * and shows nothing the admin API's other routes would (tables, keys), so it can be opened to a
 * Prometheus on another host while the admin API stays on loopback.
 */
export class MetricsServer {
  readonly #server: Server;
  readonly #log: Logger;

  /** `scrape` gives the exposition: one balancer's, or the sum over a cluster's workers. */
  constructor(scrape: () => Promise<Exposition>, log: Logger) {
    this.#log = log;
    this.#server = createServer((req, res) => {
      this.#answer(req, res, scrape).catch((err: unknown) => {
        this.#log.warn({ err: describe(err) }, 'metrics scrape failed');
        if (!res.headersSent) text(res, 500, `scrape failed: ${describe(err)}\n`);
        else res.destroy();
      });
    });
  }

  async start(address: HostPort): Promise<HostPort> {
    await listen(this.#server, address, 'metrics.listen (TETHER_METRICS_LISTEN, --metrics-listen)');
    const bound = this.#server.address();
    return typeof bound === 'object' && bound ? { host: bound.address, port: bound.port } : address;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #answer(req: IncomingMessage, res: ServerResponse, scrape: () => Promise<Exposition>): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (path !== '/metrics') return text(res, 404, 'not found: this listener serves only GET /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return text(res, 405, 'method not allowed: GET /metrics only (this listener is read-only)\n');
    }
    const { contentType, body } = await scrape();
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
