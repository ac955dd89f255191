/**
 * Embedded aedes brokers in their own process, for `--backend embedded`: `node
 * embedded-brokers.ts COUNT` prints `{"ports":[...],"wsPorts":[...]}` on one stdout line once all
 * listen (wsPorts: each broker's own WebSocket endpoint, path /mqtt, for the pass-through target).
 *
 * They are independent brokers (no shared session store), unlike `tether start`'s clustered
 * demo brokers: a persistent client that lands on another broker finds no session there, so
 * CONNACK's session-present flag tells whether the balancer kept it on the same broker.
 */
import { startEmbeddedBrokers } from '@tether/embedded-broker';
import { exitWithParent } from './exit-with-parent.ts';

const count = Number(process.argv[2] ?? '2');
if (!Number.isInteger(count) || count < 1 || count > 16) throw new Error(`embedded brokers: count must be 1..16, got ${process.argv[2]}`);
const brokers = await startEmbeddedBrokers(count, { cluster: false, websocket: true });
exitWithParent(async () => {
  await Promise.all(brokers.map((b) => b.close()));
});
process.stdout.write(`${JSON.stringify({ ports: brokers.map((b) => b.port), wsPorts: brokers.map((b) => b.wsPort) })}\n`);
