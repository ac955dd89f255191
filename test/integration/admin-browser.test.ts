import { createServer, type Server } from 'node:http';
import { formatHostPort } from '@tether/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { hasBinary } from '../harness/binaries.ts';
import { runChromium } from '../harness/chromium.ts';
import { waitFor } from '../harness/poll.ts';

/**
 * The attack the admin API used to allow, done the way a browser does it: a web page open on the
 * operator's machine (served here from another loopback origin) tries to drain a backend through
 * the admin API with requests a page may send without asking (a `no-cors` fetch with a text/plain
 * body, a text/plain form post) and with a JSON fetch (which needs a CORS preflight). Real headless
 * Chromium loads the page. Every attempt must reach the admin API and be refused, and the backend
 * must stay ready.
 */

// On a laptop without chromium the test is skipped with the reason in its name; in CI (CI=true) hasBinary throws instead.
const CHROMIUM = hasBinary('chromium');
const missing = CHROMIUM ? '' : ' [skipped: chromium not installed; apt-get install chromium]';

let balancer: TestBalancer;
let page: Server;
let pageOrigin: string;
const pageReports: string[] = [];

/** The attacker's page: three ways to POST {"state":"drain"} (or "drain") to the admin API, then a report home. */
function attackPage(admin: string): string {
  const target = `http://${admin}/backends/b1/state`;
  return `<!doctype html>
<html><head><title>an innocent page</title></head><body>
<iframe name="sink" style="display:none"></iframe>
<form id="form" method="POST" enctype="text/plain" action="${target}" target="sink">
  <input type="hidden" name='{"state":"drain","pad":"' value='"}'>
</form>
<script>
(async () => {
  const results = {};
  const attempt = async (name, init) => {
    try {
      const res = await fetch(${JSON.stringify(target)}, init);
      results[name] = 'sent:' + res.type + ':' + res.status;
    } catch (err) {
      results[name] = 'blocked';
    }
  };
  // "Simple" requests: no preflight, so the browser sends them at once (the response stays opaque).
  await attempt('textPlain', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: 'drain' });
  await attempt('jsonAsText', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{"state":"drain"}' });
  // A JSON body needs a CORS preflight (OPTIONS) first.
  await attempt('json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"state":"drain"}' });
  document.getElementById('form').submit();
  document.body.setAttribute('data-results', JSON.stringify(results));
  await fetch('/report?' + encodeURIComponent(JSON.stringify(results)));
})();
</script>
</body></html>`;
}

beforeAll(async () => {
  // Backends nobody connects to: the test only changes (or fails to change) their admin state.
  balancer = await startBalancer({ backends: ['b1=127.0.0.1:9', 'b2=127.0.0.1:10'], admin: '127.0.0.1:0', 'log.level': 'info' });
  const admin = formatHostPort(balancer.server.adminAddress!);
  page = createServer((req, res) => {
    if (req.url?.startsWith('/report?')) pageReports.push(decodeURIComponent(req.url.slice('/report?'.length)));
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(req.url === '/' ? attackPage(admin) : '');
  });
  await new Promise<void>((resolve) => page.listen({ host: '127.0.0.1', port: 0 }, resolve));
  pageOrigin = `http://127.0.0.1:${(page.address() as { port: number }).port}`;
});

afterAll(async () => {
  page?.closeAllConnections();
  await new Promise<void>((resolve) => (page ? page.close(() => resolve()) : resolve()));
  await balancer?.close();
});

const refusals = (): Record<string, unknown>[] => balancer.logs.filter((l) => l.msg === 'admin request refused');

describe.skipIf(!CHROMIUM)(`a web page in Chromium against the admin API${missing}`, () => {
  it('cannot drain a backend: every cross-origin attempt reaches the admin API and is refused; the backend stays ready', async () => {
    const run = await runChromium(['--dump-dom', '--virtual-time-budget=10000', `${pageOrigin}/`]);
    expect(run.timedOut, 'chromium did not finish in time').toBe(false);
    // The page ran to its end and reported what the browser let it do.
    const report = await waitFor(() => pageReports[0], { what: 'the page\'s report', timeoutMs: 10_000 });
    const results = JSON.parse(report) as Record<string, string>;
    expect(results.textPlain).toMatch(/^sent:opaque:0$/);
    expect(results.jsonAsText).toMatch(/^sent:opaque:0$/);
    expect(results.json).toBe('blocked');
    // The two fetches and the form arrived as POSTs, and the JSON fetch's preflight as OPTIONS: all refused for their Origin.
    const reason = `cross-origin request refused: Origin "${pageOrigin}" is not this admin API's own`;
    await waitFor(() => (refusals().length >= 4 ? true : undefined), { what: () => `4 refusals (seen ${JSON.stringify(refusals())})`, timeoutMs: 10_000 });
    expect(refusals().map((l) => [l.method, l.status, l.reason])).toEqual(expect.arrayContaining([
      ['POST', 403, reason], ['POST', 403, reason], ['OPTIONS', 403, reason], ['POST', 403, reason],
    ]));
    expect(refusals().filter((l) => l.method === 'POST')).toHaveLength(3);
    expect(balancer.server.pool.get('b1')?.state).toBe('ready');
    expect(balancer.logs.filter((l) => l.msg === 'backend state set by admin')).toEqual([]);
  }, 90_000);
});
