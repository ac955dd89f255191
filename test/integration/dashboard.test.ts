import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, startTether, type RunningTether } from '../../cli/test/helpers/cli.ts';
import { closeAllClients, connectClient, disconnect } from '../../cli/test/helpers/mqtt.ts';
import { startBalancer, tableEntries, type TestBalancer } from '../harness/balancer.ts';
import { hasBinary } from '../harness/binaries.ts';
import { launchBrowser, type HeadlessBrowser, type PageTrouble } from '../harness/browser.ts';
import { startHaBrokers, type HaAedes } from '../harness/ha-aedes.ts';
import { waitFor, within } from '../harness/poll.ts';
import { RedisServer } from '../harness/redis.ts';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';

/**
 * The admin listener's dashboard (GET /), in headless Debian chromium driven by puppeteer-core,
 * over a balancer with two real aedes brokers and real mqtt.js clients. The page is opened as a
 * browser user opens it: with an admin token set, the browser is challenged and answers with the
 * token as the password. What the page shows is read from the page (its text), what its buttons
 * do is checked on the balancer and with real clients.
 */

// On a laptop without chromium the test is skipped with the reason in its name; in CI (CI=true) hasBinary throws instead.
const CHROMIUM = hasBinary('chromium');
const missing = CHROMIUM ? '' : ' [skipped: chromium not installed; apt-get install chromium]';
const TOKEN = 'dashboard-test-token-0123456789';
const T = 120_000;
/** Where the test writes its screenshots (a fresh temp folder, named in the test output). */
const SHOTS = mkdtempSync(join(tmpdir(), 'tether-dashboard-'));

/** The text of the cell of backend `id`'s row whose class is `cls`. */
const cellText = (page: Page, id: string, cls: string): Promise<string> =>
  page.$eval(`#backends tbody tr[data-key="${id}"] .${cls}`, (e) => e.textContent ?? '');

/** Waits until the text of `selector` on the page matches `expected`. */
async function waitForText(page: Page, selector: string, expected: RegExp): Promise<string> {
  let last = '';
  return waitFor(async () => {
    last = await page.$eval(selector, (e) => e.textContent ?? '').catch((err: unknown) => String(err));
    return expected.test(last) ? last : undefined;
  }, { what: () => `${selector} to match ${expected} (it says ${JSON.stringify(last)})`, timeoutMs: 20_000, intervalMs: 100 });
}

/** Waits until the page shows `expected` in backend `id`'s cell `cls` (the page polls every 2 s). */
const waitForCell = (page: Page, id: string, cls: string, expected: RegExp): Promise<string> =>
  waitForText(page, `#backends tbody tr[data-key="${id}"] .${cls}`, expected);

describe.skipIf(!CHROMIUM)(`the dashboard in Chromium, one process${missing}`, () => {
  let brokers: HaAedes[];
  let balancer: TestBalancer;
  let browser: HeadlessBrowser;
  let origin: string;

  beforeAll(async () => {
    brokers = await startHaBrokers(2);
    balancer = await startBalancer({
      backends: brokers.map((b) => b.spec), admin: '127.0.0.1:0', 'admin.token': TOKEN, 'log.level': 'info',
      'healthCheck.type': 'mqtt', 'healthCheck.interval': '250ms', 'healthCheck.fall': 2,
    });
    origin = `http://127.0.0.1:${balancer.server.adminAddress!.port}`;
    browser = await launchBrowser();
  }, T);

  afterAll(async () => {
    await closeAllClients();
    await browser?.close();
    await balancer?.close();
    await Promise.all((brokers ?? []).map((b) => b.close()));
  });

  it('without the token, the page and its data are refused (the page with a Basic challenge the browser answers with a prompt)', async () => {
    // Headless chromium has no prompt to show: a challenge it cannot answer ends the navigation.
    const { page } = await browser.page();
    await expect(page.goto(`${origin}/`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    expect(balancer.logs.some((l) => l.msg === 'admin request refused' && l.path === '/' && l.status === 401)).toBe(true);
    const challenge = await fetch(`${origin}/`);
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('www-authenticate')).toMatch(/^Basic realm="tether-admin"/);
    expect(await challenge.text()).toContain('give the admin token as the <strong>password</strong>');
    for (const path of ['/dashboard.js', '/backends', '/metrics']) {
      const res = await fetch(`${origin}${path}`);
      expect(res.status, path).toBe(401);
    }
    // A wrong password is refused the same way.
    const wrong = await fetch(`${origin}/`, { headers: { authorization: `Basic ${Buffer.from(`admin:${TOKEN}x`).toString('base64')}` } });
    expect(wrong.status).toBe(401);
    await page.close();
  }, T);

  let page: Page;
  let trouble: PageTrouble;

  it('with the token, loads with no console error and shows both backends, ready, in text', async () => {
    ({ page, trouble } = await browser.page());
    await page.setViewport({ width: 1280, height: 900 });
    // The browser's answer to the challenge: any user name, the token as the password.
    await page.authenticate({ username: 'operator', password: TOKEN });
    const answer = await page.goto(`${origin}/`);
    expect(answer?.status()).toBe(200);
    expect(answer?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 20_000 });
    const ids = await page.$$eval('#backends tbody tr', (rows) => rows.map((r) => r.getAttribute('data-key')));
    expect(ids).toEqual(['b1', 'b2']);
    for (const b of brokers) {
      expect(await cellText(page, b.id, 'address')).toBe(`127.0.0.1:${b.port}`);
      expect(await cellText(page, b.id, 'state')).toBe('ready');
      expect(await cellText(page, b.id, 'active')).toBe('0');
    }
    // No secret in the page: not in its HTML, not in anything it shows.
    expect(await page.content()).not.toContain(TOKEN);
    expect(trouble.errors).toEqual([]);
  }, T);

  it('counts real clients as they connect: active connections per backend, and their sum', async () => {
    for (let i = 0; i < 4; i++) await connectClient(balancer.url, { clientId: `dash-${i}`, clean: false });
    await waitFor(async () => {
      const counts = await Promise.all(brokers.map((b) => cellText(page, b.id, 'active')));
      return counts.reduce((n, c) => n + Number(c), 0) === 4 ? counts : undefined;
    }, { what: 'the page to show 4 active connections', timeoutMs: 20_000, intervalMs: 100 });
    // What the page shows is what the brokers hold.
    for (const b of brokers) {
      const held = [0, 1, 2, 3].filter((i) => b.holds(`dash-${i}`)).length;
      await waitForCell(page, b.id, 'active', new RegExp(`^${held}$`));
    }
    // The stick table: its entries and the keys, searchable.
    await waitForText(page, '#tables', /4 of/);
    await page.type('#search-key', 'dash-2');
    await page.keyboard.press('Enter');
    await waitForText(page, '#search-result', /dash-2 → b\d/);
    await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });
    console.log(`dashboard screenshot: ${join(SHOTS, 'dashboard.png')}`);
    expect(trouble.errors).toEqual([]);
  }, T);

  it('drains a backend through its button: the page says so, and new real clients no longer reach it', async () => {
    await page.click('button[aria-label="drain b1"]');
    await waitForCell(page, 'b1', 'state', /^drain/);
    expect(balancer.server.pool.get('b1')?.state).toBe('drain');
    expect(await page.$eval('#action-result', (e) => e.textContent)).toBe('b1 → drain: done');
    const fresh = ['fresh-0', 'fresh-1', 'fresh-2', 'fresh-3'];
    for (const clientId of fresh) {
      const { client } = await connectClient(balancer.url, { clientId });
      await waitFor(() => brokers.some((b) => b.holds(clientId)), { what: `a broker to hold ${clientId}` });
      expect(brokers[0]!.holds(clientId), `${clientId} reached the drained b1`).toBe(false);
      await disconnect(client);
    }
    // Drain progress: the clients already on b1 are still there, and the page counts them.
    await waitForCell(page, 'b1', 'drain', /live connection|drained/);
    // Back to ready, with the keyboard alone: focus the button and press Enter.
    await page.focus('button[aria-label="ready b1"]');
    await page.keyboard.press('Enter');
    await waitForCell(page, 'b1', 'state', /^ready$/);
    expect(balancer.server.pool.get('b1')?.state).toBe('ready');
    expect(trouble.errors).toEqual([]);
  }, T);

  it('sets a weight and deletes a stick entry through the admin API, as the same origin', async () => {
    await page.click('#weight-b2', { count: 3 });
    await page.type('#weight-b2', '7');
    await page.click('button[aria-label="Set the weight of b2"]');
    await waitForCell(page, 'b2', 'weight-now', /^7 \(config 1\)$/);
    expect(balancer.server.pool.get('b2')?.weight).toBe(7);

    expect((await tableEntries(balancer)).some((e) => e.key === 'dash-2')).toBe(true);
    await page.click('#search-result button[aria-label="Delete the stick entry of dash-2"]');
    await waitForText(page, '#action-result', /delete dash-2: done/);
    expect((await tableEntries(balancer)).some((e) => e.key === 'dash-2')).toBe(false);
    // Each change passed the guard with the page's own Origin; none was refused.
    expect(balancer.logs.filter((l) => l.msg === 'admin request refused' && l.method !== 'GET')).toEqual([]);
    expect(trouble.errors).toEqual([]);
  }, T);

  it('a page of another origin, open in the same browser that holds the token, cannot use it: refused for its Origin', async () => {
    // The browser now sends the token (Basic) to the admin origin by itself, as it would a cookie:
    // the guard's Origin and Content-Type checks are what stop another site from riding on it.
    const target = `${origin}/backends/b1/state`;
    const attacker = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(req.url === '/' ? `<!doctype html><body>
<iframe name="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" action="${target}" target="sink"><input type="hidden" name='{"state":"drain","x":"' value='"}'></form>
<script>
(async () => {
  await fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{"state":"drain"}' }).catch(() => {});
  await fetch(${JSON.stringify(target)}, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: '{"state":"drain"}' }).catch(() => {});
  document.getElementById('f').submit();
})();
</script></body>` : '');
    });
    await new Promise<void>((resolve) => attacker.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const attackerOrigin = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
    try {
      const { page: evil } = await browser.page();
      await evil.goto(`${attackerOrigin}/`);
      const refused = (): Record<string, unknown>[] => balancer.logs.filter((l) => l.msg === 'admin request refused' && String(l.reason).includes(attackerOrigin));
      await waitFor(() => (refused().filter((l) => l.method === 'POST').length >= 2 ? true : undefined), { what: () => `the attacker's POSTs to be refused (${JSON.stringify(refused())})`, timeoutMs: 20_000 });
      expect(refused().every((l) => l.status === 403)).toBe(true);
      expect(balancer.server.pool.get('b1')?.state).toBe('ready');
      await evil.close();
    } finally {
      attacker.closeAllConnections();
      await new Promise<void>((resolve) => attacker.close(() => resolve()));
    }
  }, T);

  it('is usable on a narrow window: no sideways scrolling, every backend still says its state in words', async () => {
    await page.bringToFront();
    await page.setViewport({ width: 380, height: 800 });
    await page.waitForFunction('document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1', { timeout: 5_000 });
    expect(await cellText(page, 'b2', 'state')).toBe('ready');
    const visible = await page.$eval('button[aria-label="drain b2"]', (b) => b.getBoundingClientRect().width > 0);
    expect(visible).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'dashboard-narrow.png'), fullPage: true });
    expect(trouble.errors).toEqual([]);
  }, T);

  it('a broker that goes away: its backend is DOWN, in words and colour, with the last check failed', async () => {
    await page.setViewport({ width: 1280, height: 900 });
    await waitForCell(page, 'b2', 'health', /^up: last check passed \(\d+ passed, 0 failed\)$/);
    await brokers[1]!.kill();
    await waitFor(() => balancer.server.pool.get('b2')?.state === 'down', { what: 'b2 to be marked down' });
    await waitForCell(page, 'b2', 'state', /^down \(admin ready\)$/);
    await waitForCell(page, 'b2', 'health', /^DOWN: last check failed \(\d+ passed, [1-9]\d* failed\)$/);
    expect(await page.$eval('#backends tbody tr[data-key="b2"] .state', (e) => e.ownerDocument.defaultView!.getComputedStyle(e).color)).toBe('rgb(207, 34, 46)');
    expect(await cellText(page, 'b1', 'state')).toBe('ready');
    // The broker's sockets were reset: the page may have seen nothing else fail.
    expect(trouble.errors).toEqual([]);
  }, T);
});

describe.skipIf(!CHROMIUM)(`the dashboard in Chromium, tether start --workers 2${missing}`, () => {
  let brokers: HaAedes[];
  let tether: RunningTether;
  let browser: HeadlessBrowser;

  beforeAll(async () => {
    brokers = await startHaBrokers(2);
    tether = await startTether(['--workers', '2', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...brokers.flatMap((b) => ['--backend', b.spec])], {
      timeoutMs: 30_000,
      env: { TETHER_CLUSTER_SCHEDULING: 'rr', TETHER_ADMIN_TOKEN: TOKEN },
    });
    browser = await launchBrowser();
  }, T);

  afterAll(async () => {
    await closeAllClients();
    await browser?.close();
    await killAll();
    await Promise.all((brokers ?? []).map((b) => b.close()));
  });

  it('shows the primary\'s merged view: both workers, both backends, the connections of every worker summed', async () => {
    const { page, trouble } = await browser.page();
    await page.setViewport({ width: 1280, height: 900 });
    await page.authenticate({ username: 'operator', password: TOKEN });
    expect((await page.goto(`http://${tether.admin!}/`))?.status()).toBe(200);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 20_000 });
    const workers = await page.$$eval('#workers tbody tr', (rows) => rows.map((r) => r.cells[0]!.textContent));
    expect(workers).toEqual(['worker 1', 'worker 2']);
    expect(await page.$eval('#instance', (e) => e.textContent)).toMatch(/2 workers/);
    // Round robin between the workers: six clients are served by both, and the page sums them.
    for (let i = 0; i < 6; i++) {
      await connectClient(tether.url, { clientId: `w-${i}`, clean: false });
    }
    await waitFor(async () => {
      const counts = await Promise.all(brokers.map((b) => cellText(page, b.id, 'active')));
      return counts.reduce((n, c) => n + Number(c), 0) === 6 ? counts : undefined;
    }, { what: 'the page to show 6 active connections over both workers', timeoutMs: 20_000, intervalMs: 100 });
    await waitForText(page, '#tables', /6 of/);
    await page.screenshot({ path: join(SHOTS, 'dashboard-workers.png'), fullPage: true });
    // A drain through the page reaches every worker.
    await page.click('button[aria-label="drain b2"]');
    await waitForCell(page, 'b2', 'state', /^drain$/);
    for (let i = 0; i < 4; i++) {
      const clientId = `w-fresh-${i}`;
      const { client } = await connectClient(tether.url, { clientId });
      await waitFor(() => brokers.some((b) => b.holds(clientId)), { what: `a broker to hold ${clientId}` });
      expect(brokers[1]!.holds(clientId), `${clientId} reached the drained b2`).toBe(false);
      await disconnect(client);
    }
    expect(trouble.errors).toEqual([]);
  }, T);
});

const REDIS = CHROMIUM && hasBinary('redis-server');
const noRedis = REDIS ? '' : ' [skipped: chromium or redis-server not installed; apt-get install chromium redis-server]';

describe.skipIf(!REDIS)(`the dashboards of two instances sharing a Redis store${noRedis}`, () => {
  let redis: RedisServer;
  let brokers: HaAedes[];
  let instances: TestBalancer[];
  let browser: HeadlessBrowser;

  beforeAll(async () => {
    redis = await RedisServer.start();
    brokers = await startHaBrokers(2);
    const start = (): Promise<TestBalancer> => startBalancer({
      backends: brokers.map((b) => b.spec),
      admin: '127.0.0.1:0',
      'log.level': 'info',
      select: [{ use: 'stick-table', options: { store: { type: 'redis', url: redis.url } } }, 'least-connections'],
    });
    instances = [await start(), await start()];
    browser = await launchBrowser();
  }, T);

  afterAll(async () => {
    await closeAllClients();
    await browser?.close();
    await Promise.all((instances ?? []).map((b) => b.close()));
    await Promise.all((brokers ?? []).map((b) => b.close()));
    await redis?.close();
  });

  it('each page shows its own instance\'s connections and the one shared table; an entry deleted on one page is gone for both', async () => {
    const pages = await Promise.all(instances.map(async (instance) => {
      const { page, trouble } = await browser.page();
      await page.setViewport({ width: 1280, height: 900 });
      expect((await page.goto(`http://127.0.0.1:${instance.server.adminAddress!.port}/`))?.status()).toBe(200);
      await page.waitForSelector('body[data-loaded="true"]', { timeout: 20_000 });
      return { page, trouble };
    }));
    // Each page names its own admin address.
    for (const [i, { page }] of pages.entries()) {
      expect(await page.$eval('#instance', (e) => e.textContent)).toContain(`127.0.0.1:${instances[i]!.server.adminAddress!.port}`);
    }
    // A client through the first instance only.
    await connectClient(instances[0]!.url, { clientId: 'shared-1', clean: false });
    const home = brokers.find((b) => b.holds('shared-1'))!;
    // A page polls only while it is visible (a background tab costs the balancer nothing): one at a time in front.
    await pages[0]!.page.bringToFront();
    await waitForCell(pages[0]!.page, home.id, 'active', /^1$/);
    // The second instance serves nobody: its page says so, and still shows the shared entry.
    expect(await cellText(pages[1]!.page, home.id, 'active')).toBe('0');
    for (const { page } of pages) {
      await page.bringToFront();
      await waitForText(page, '#tables', /Entries1 in the shared store/);
      expect(await page.$eval('#tables', (e) => e.textContent)).toMatch(/Storeredis redis:\/\/127\.0\.0\.1:\d+.*Store healthhealthy/);
    }
    // Found and deleted from the second page: the entry is gone from Redis, so from the first instance too.
    await pages[1]!.page.bringToFront();
    await pages[1]!.page.type('#search-key', 'shared-1');
    await pages[1]!.page.keyboard.press('Enter');
    await waitForText(pages[1]!.page, '#search-result', new RegExp(`shared-1 → ${home.id}`));
    await pages[1]!.page.click('#search-result button[aria-label="Delete the stick entry of shared-1"]');
    await waitForText(pages[1]!.page, '#action-result', /delete shared-1: done/);
    await waitFor(async () => ((await tableEntries(instances[0]!)).some((e) => e.key === 'shared-1') ? undefined : true), { what: 'shared-1 to be gone from the first instance\'s table' });
    await pages[0]!.page.bringToFront();
    await waitForText(pages[0]!.page, '#tables', /Entries0 in the shared store/);
    for (const { trouble } of pages) expect(trouble.errors).toEqual([]);
  }, T);
});

const MOSQUITTO = CHROMIUM && hasBinary('mosquitto');
const noMosquitto = MOSQUITTO ? '' : ' [skipped: chromium or mosquitto not installed; apt-get install chromium mosquitto]';

describe.skipIf(!MOSQUITTO)(`the dashboard flags a kick loop, with Debian mosquitto brokers${noMosquitto}`, () => {
  let brokers: Mosquitto[];
  let balancer: TestBalancer;
  let browser: HeadlessBrowser;

  beforeAll(async () => {
    brokers = [await startMosquitto(), await startMosquitto()];
    balancer = await startBalancer({ backends: brokers.map((b, i) => `m${i + 1}=127.0.0.1:${b.port}`), admin: '127.0.0.1:0', 'log.level': 'warn' });
    browser = await launchBrowser();
  }, T);

  afterAll(async () => {
    await closeAllClients();
    await browser?.close();
    await balancer?.close();
    await Promise.all((brokers ?? []).map((b) => b.stop()));
  });

  it('two clients with one client id, which mosquitto makes take turns, are flagged; a quiet client is not', async () => {
    const { page, trouble } = await browser.page();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`http://127.0.0.1:${balancer.server.adminAddress!.port}/`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 20_000 });
    await connectClient(balancer.url, { clientId: 'quiet', clean: false });
    // mosquitto closes the older connection of a client id when a new one arrives; each twin reconnects at once.
    // The second twin starts once the first is connected, so the stick table sends both to the same broker.
    const twin = (): mqtt.MqttClient => mqtt.connect(balancer.url, { clientId: 'twin', clean: false, reconnectPeriod: 100, connectTimeout: 5_000 });
    const twins = [twin()];
    try {
      await within(new Promise((resolve) => twins[0]!.once('connect', resolve)), 'the first twin to connect');
      twins.push(twin());
      const row = '#top-keys tbody tr[data-key="twin"]';
      await waitForText(page, row, /kick-loop suspect/);
      expect(await page.$eval('#top-keys tbody tr', (r) => r.getAttribute('data-key'))).toBe('twin');
      expect(await page.$eval('#top-keys tbody tr[data-key="quiet"] .flag', (e) => e.textContent)).toBe('');
      expect(Number(await page.$eval(`${row} .rpm`, (e) => e.textContent))).toBeGreaterThanOrEqual(6);
    } finally {
      for (const twin of twins) twin.end(true);
    }
    expect(trouble.errors).toEqual([]);
  }, T);

  it('with connect-guard first in the chain, the loop it found is flagged as such, and the stick table is still the one listed', async () => {
    const guarded = await startBalancer({ backends: brokers.map((b, i) => `m${i + 1}=127.0.0.1:${b.port}`), admin: '127.0.0.1:0', 'log.level': 'warn', select: [{ use: 'connect-guard', options: { kickLoop: { takeovers: 3 } } }, 'stick-table', 'least-connections'] });
    const twins: mqtt.MqttClient[] = [];
    try {
      const { page, trouble } = await browser.page();
      await page.setViewport({ width: 1280, height: 900 });
      await page.goto(`http://127.0.0.1:${guarded.server.adminAddress!.port}/`);
      await page.waitForSelector('body[data-loaded="true"]', { timeout: 20_000 });
      const twin = (): mqtt.MqttClient => mqtt.connect(guarded.url, { clientId: 'guarded-twin', clean: false, reconnectPeriod: 100, connectTimeout: 5_000, reconnectOnConnackError: true });
      twins.push(twin());
      await within(new Promise((resolve) => twins[0]!.once('connect', resolve)), 'the first twin to connect');
      twins.push(twin());
      const row = '#top-keys tbody tr[data-key="guarded-twin"]';
      await waitForText(page, row, /kick loop \(connect-guard\)/);
      // The row is the stick table's: it names the broker, not connect-guard's "-".
      expect(await page.$eval(`${row} .backend`, (e) => e.textContent)).toMatch(/^m[12]$/);
      expect(trouble.errors).toEqual([]);
    } finally {
      for (const t of twins) t.end(true);
      await guarded.close();
    }
  }, T);
});

describe.skipIf(!CHROMIUM)(`the dashboard of a balancer with metrics turned off${missing}`, () => {
  let brokers: HaAedes[];
  let balancer: TestBalancer;
  let browser: HeadlessBrowser;

  beforeAll(async () => {
    brokers = await startHaBrokers(2);
    balancer = await startBalancer({ backends: brokers.map((b) => b.spec), admin: '127.0.0.1:0', 'metrics.enabled': false, 'log.level': 'warn' });
    browser = await launchBrowser();
  }, T);

  afterAll(async () => {
    await closeAllClients();
    await browser?.close();
    await balancer?.close();
    await Promise.all((brokers ?? []).map((b) => b.close()));
  });

  it('still shows the backends and their live connections, and says what it cannot show', async () => {
    const { page, trouble } = await browser.page();
    await page.goto(`http://127.0.0.1:${balancer.server.adminAddress!.port}/`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 20_000 });
    expect(await page.$eval('#metrics-note', (e) => e.hasAttribute('hidden'))).toBe(false);
    await connectClient(balancer.url, { clientId: 'no-metrics', clean: false });
    const home = await waitFor(() => brokers.find((b) => b.holds('no-metrics')), { what: 'a broker to hold no-metrics' });
    await waitForCell(page, home.id, 'active', /^1$/);
    expect(await cellText(page, home.id, 'cps')).toBe('n/a');
    expect(await cellText(page, home.id, 'state')).toBe('ready');
    // The browser logs the 404 of the first GET /metrics; the page then stops asking for a minute.
    expect(trouble.errors).toEqual([expect.stringMatching(/^console: Failed to load resource: .*404.*\/metrics\)$/)]);
  }, T);
});
