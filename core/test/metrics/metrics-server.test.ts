import { afterEach, describe, expect, it } from 'vitest';
import { scrape } from '../../../test/harness/prometheus.ts';
import { BackendPool } from '../../src/backend/backend-pool.ts';
import { MetricsServer } from '../../src/metrics/metrics-server.ts';
import { TetherMetrics } from '../../src/metrics/tether-metrics.ts';
import { formatHostPort } from '../../src/net/address.ts';
import { Stats } from '../../src/stats.ts';
import { capturingLogger } from '../fixtures.ts';

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(fail = false): Promise<{ url: string; lines: Record<string, unknown>[] }> {
  const { log, lines } = capturingLogger();
  const metrics = new TetherMetrics({ pool: new BackendPool([]), stats: new Stats(), log, tables: async () => [] });
  metrics.listener('main').accept();
  server = new MetricsServer(async () => {
    if (fail) throw new Error('boom');
    return metrics.exposition();
  }, log);
  const bound = await server.start({ host: '127.0.0.1', port: 0 });
  return { url: `http://${formatHostPort(bound)}`, lines };
}

describe('MetricsServer', () => {
  it('answers GET /metrics with the exposition, and HEAD with its headers', async () => {
    const { url } = await start();
    const r = await scrape(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.scrape!.value('tether_connections_accepted_total', { listener: 'main' })).toBe(1);
    const head = await fetch(`${url}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(1000);
    expect(await head.text()).toBe('');
  });

  it('is read-only and serves nothing else', async () => {
    const { url } = await start();
    const post = await fetch(`${url}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    for (const path of ['/', '/table', '/stats', '/backends', '/metrics/x']) expect((await fetch(`${url}${path}`)).status, path).toBe(404);
  });

  it('answers 500 and logs when a scrape fails, and keeps serving', async () => {
    const { url, lines } = await start(true);
    const r = await scrape(`${url}/metrics`);
    expect(r.status).toBe(500);
    expect(r.body).toMatch(/scrape failed: boom/);
    expect(lines.some((l) => l.msg === 'metrics scrape failed' && /boom/.test(String(l.err)))).toBe(true);
    expect((await scrape(`${url}/metrics`)).status).toBe(500);
  });
});
