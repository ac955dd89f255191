import { PacketType } from '../mqtt-frames.ts';
import { openClients } from './connect-storm.ts';
import { Meter } from './meter.ts';
import { PINGREQ, qos0Batch, qos1Packets } from './packets.ts';
import type { PublishCommand, PublishResult } from './protocol.ts';
import { Tracker, type BenchConn } from './conn.ts';

/** QoS 0 messages per write: the generator's cost per message stays far below the balancer's. */
const QOS0_BATCH = 64;
/** Batches written in a row before giving the event loop back when no write has to wait. */
const YIELD_EVERY = 8;
/** Distinct QoS 1 packet ids cycled through; must exceed the window. */
const QOS1_IDS = 1024;

/**
 * Publish throughput: `clients` connections publish for `durationMs` as fast as the path takes it.
 *
 * QoS 0 has no acknowledgement, so each connection writes batches while the socket accepts them
 * (waiting for 'drain' when it does not), then sends PINGREQ: its PINGRESP comes back after the
 * broker has read every message before it, so the elapsed time includes the delivery of all.
 * QoS 1 keeps `window` messages in flight per connection and counts PUBACKs.
 */
export async function publish(cmd: PublishCommand): Promise<PublishResult> {
  if (cmd.qos === 1 && cmd.window >= QOS1_IDS) throw new Error(`publish: window must be below ${QOS1_IDS}`);
  const tracker = new Tracker(cmd.limitMs);
  const conns = await openClients(tracker, cmd, cmd.clients, cmd.clients);
  const topic = `bench/${cmd.idPrefix}`;
  // Encoded before the clock starts; every connection writes the same bytes.
  const batch = qos0Batch(topic, cmd.payloadBytes, QOS0_BATCH);
  const packets = qos1Packets(topic, cmd.payloadBytes, QOS1_IDS);
  const meter = new Meter(cmd.watch);
  meter.start();
  const deadline = performance.now() + cmd.durationMs;
  const counts = await Promise.all(conns.map((conn) => (cmd.qos === 0 ? qos0(conn, batch, deadline, tracker) : qos1(conn, packets, cmd.window, deadline))));
  const reading = meter.stop();
  await Promise.all(conns.map((c) => c.disconnect()));
  tracker.finish();
  let ok = 0;
  for (const c of counts) {
    if (typeof c === 'number') ok += c;
    else tracker.fail(c);
  }
  return { ...reading, ok, errors: tracker.errors, ...(tracker.firstError ? { firstError: tracker.firstError } : {}) };
}

/** Messages delivered by one connection, or the error that stopped it. */
async function qos0(conn: BenchConn, batch: Buffer, deadline: number, tracker: Tracker): Promise<number | Error> {
  let sent = 0;
  let sinceYield = 0;
  try {
    while (!tracker.expired && performance.now() < deadline) {
      sent += QOS0_BATCH;
      if (!conn.send(batch)) {
        await drained(conn);
        sinceYield = 0;
      } else if (++sinceYield >= YIELD_EVERY) {
        // While the path keeps up, writes never block: let the other connections have a turn.
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    conn.send(PINGREQ);
    await conn.expect(PacketType.PINGRESP);
    return sent;
  } catch (err) {
    return err as Error;
  }
}

function drained(conn: BenchConn): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      conn.socket.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      conn.socket.off('drain', onDrain);
      reject(conn.error ?? new Error('connection closed while publishing'));
    };
    conn.socket.once('drain', onDrain);
    conn.socket.once('close', onClose);
  });
}

/** Acknowledged messages of one connection, or the error that stopped it. */
function qos1(conn: BenchConn, packets: Buffer[], window: number, deadline: number): Promise<number | Error> {
  return new Promise((resolve) => {
    let next = 0;
    let inFlight = 0;
    let acked = 0;
    const sendOne = (): void => {
      conn.send(packets[next]!);
      next = (next + 1) % packets.length;
      inFlight++;
    };
    conn.onFrame = (type) => {
      if (type !== PacketType.PUBACK) return;
      inFlight--;
      acked++;
      if (performance.now() < deadline) sendOne();
      else if (inFlight === 0) finish(acked);
    };
    const onClose = (): void => finish(conn.error ?? new Error('connection closed while publishing'));
    const finish = (result: number | Error): void => {
      conn.onFrame = undefined;
      conn.socket.off('close', onClose);
      resolve(result);
    };
    conn.socket.once('close', onClose);
    for (let i = 0; i < window; i++) sendOne();
  });
}
