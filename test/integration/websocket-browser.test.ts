import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stuckTo } from '../harness/balancer.ts';
import { hasBinary } from '../harness/binaries.ts';
import { runChromium } from '../harness/chromium.ts';
import { waitFor } from '../harness/poll.ts';
import { AedesWitness } from '../harness/traffic-aedes-witness.ts';
import { ClientPool } from '../harness/traffic-mqtt-clients.ts';
import { startWsBalancer, type WsBalancer } from '../harness/websocket-balancer.ts';

/**
 * A real browser: headless Chromium loads a page (served here, with mqtt.js's browser bundle from
 * node_modules) that connects through Tether's WebSocket listener with a persistent session,
 * subscribes, receives what a TCP client publishes, disconnects, and comes back to find its
 * session and the message queued while it was away. Two independent brokers: only the one that
 * holds the session can deliver it.
 */

const CHROMIUM = hasBinary('chromium');
const missing = CHROMIUM ? '' : ' [skipped: chromium not installed; apt-get install chromium]';
// The package's exports map hides dist/: find the package, then the bundle in it.
const bundle = readFileSync(join(dirname(createRequire(import.meta.url).resolve('mqtt/package.json')), 'dist', 'mqtt.min.js'));

let brokers: EmbeddedBroker[];
let witness: AedesWitness;
let balancer: WsBalancer;
let page: Server;
let origin: string;
const reports: string[] = [];
/** Steps the page waits for (`GET /wait/NAME`): answered when the test releases them. */
const waiting = new Map<string, ServerResponse>();
const released = new Set<string>();
const pool = new ClientPool();

function release(step: string): void {
  released.add(step);
  waiting.get(step)?.end('go');
}

function browserPage(wsUrl: string): string {
  return `<!doctype html><html><head><title>mqtt over ws</title><script src="/mqtt.min.js"></script></head><body>
<script>
const report = (text) => fetch('/report?' + encodeURIComponent(text));
const connect = () => new Promise((resolve, reject) => {
  const client = mqtt.connect(${JSON.stringify(wsUrl)}, { clientId: 'browser-1', clean: false, reconnectPeriod: 0, connectTimeout: 10000 });
  client.on('message', (topic, payload) => report('message ' + topic + ' ' + payload.toString()));
  client.once('connect', (connack) => resolve({ client, connack }));
  client.once('error', (err) => reject(err));
});
(async () => {
  try {
    const first = await connect();
    await report('connected sessionPresent=' + first.connack.sessionPresent);
    await first.client.subscribeAsync('browser/#', { qos: 1 });
    await report('subscribed');
    await fetch('/wait/live-message-seen');
    await first.client.endAsync();
    await report('disconnected');
    await fetch('/wait/queued');
    const second = await connect();
    await report('reconnected sessionPresent=' + second.connack.sessionPresent);
    await fetch('/wait/done');
    await second.client.endAsync();
    await report('end');
  } catch (err) {
    await report('error ' + err.message);
  }
  document.body.setAttribute('data-done', 'yes');
})();
</script></body></html>`;
}

beforeAll(async () => {
  brokers = await startEmbeddedBrokers(2, { cluster: false });
  witness = new AedesWitness(brokers);
  balancer = await startWsBalancer({ backends: brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`), 'log.level': 'info' });
  page = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (url.startsWith('/report?')) {
      reports.push(decodeURIComponent(url.slice('/report?'.length)));
      return res.end('ok');
    }
    if (url.startsWith('/wait/')) {
      const step = url.slice('/wait/'.length);
      if (released.has(step)) return res.end('go');
      waiting.set(step, res);
      return undefined;
    }
    if (url === '/mqtt.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(bundle);
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(url === '/' ? browserPage(balancer.wsUrl) : '');
  });
  await new Promise<void>((resolve) => page.listen({ host: '127.0.0.1', port: 0 }, resolve));
  origin = `http://127.0.0.1:${(page.address() as { port: number }).port}`;
});

afterAll(async () => {
  await pool.closeAll();
  witness?.detach();
  page?.closeAllConnections();
  await new Promise<void>((resolve) => (page ? page.close(() => resolve()) : resolve()));
  await balancer?.close();
  await Promise.all((brokers ?? []).map((b) => b.close()));
});

const reported = (text: string): Promise<true> => waitFor(() => reports.includes(text) || undefined, { what: () => `the page to report "${text}" (so far: ${JSON.stringify(reports)})`, timeoutMs: 30_000 });

describe.skipIf(!CHROMIUM)(`mqtt.js in headless Chromium through the WebSocket listener${missing}`, () => {
  it('connects, subscribes, receives a TCP client\'s message, reconnects to the same broker and finds its session and the queued message', async () => {
    // Real time, not --virtual-time-budget (which runs the page's timers ahead while it waits on
    // the network, so mqtt.js's connect timeout fires at once): the page stays open until the
    // test has seen its last report and stops Chromium.
    const stop = new AbortController();
    const browser = runChromium([`${origin}/`], 80_000, stop.signal);
    try {
      await reported('connected sessionPresent=false');
      await reported('subscribed');
      const home = (await stuckTo(balancer, 'browser-1'))!;
      const homePort = brokers.find((b) => b.id === home)!.port;
      // The TCP publisher connects to the browser's broker directly: the message reaches the page only through that broker.
      const publisher = (await pool.connect(`mqtt://127.0.0.1:${homePort}`, { clientId: 'tcp-publisher', clean: true })).client;
      await publisher.publishAsync('browser/live', 'hello browser', { qos: 1 });
      await reported('message browser/live hello browser');
      const departed = witness.nextDeparture('browser-1');
      release('live-message-seen');
      await reported('disconnected');
      // Queued in the browser's offline session on its broker once PUBACK is back.
      expect((await departed).broker).toBe(home);
      await publisher.publishAsync('browser/queued', 'while you were away', { qos: 1 });
      release('queued');
      await reported('reconnected sessionPresent=true');
      await reported('message browser/queued while you were away');
      release('done');
      await reported('end');
      expect(reports.filter((r) => r.startsWith('error'))).toEqual([]);
      expect(await stuckTo(balancer, 'browser-1')).toBe(home);
      const closed = balancer.logs.filter((l) => l.msg === 'connection closed' && l.listener === 'ws');
      expect(closed.length).toBeGreaterThanOrEqual(1);
    } finally {
      release('live-message-seen');
      release('queued');
      release('done');
      stop.abort();
      const run = await browser;
      expect(run.timedOut, `chromium did not finish: ${run.stderr.slice(-2000)}`).toBe(false);
    }
  }, 120_000);
});
