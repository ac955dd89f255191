import { PacketType } from '../mqtt-frames.ts';
import { summarize } from '../stats.ts';
import { Meter } from './meter.ts';
import { connectPackets, subscribePacket } from './packets.ts';
import type { ConnectCommand, ConnectResult, Endpoint } from './protocol.ts';
import { Tracker, type BenchConn } from './conn.ts';

/**
 * Connect storm (and reconnect storm): `count` clients, each one TCP connect, CONNECT, CONNACK,
 * optionally SUBSCRIBE + SUBACK, then DISCONNECT and the server's close. `concurrency` workers
 * each take every concurrency-th client in turn, so no client id is ever connected twice at once
 * (a broker would take the older session over).
 */
export async function connectStorm(cmd: ConnectCommand): Promise<ConnectResult> {
  // Keepalive 0: the broker must not time out a client for the benchmark's own pauses.
  const connects = connectPackets(cmd.idPrefix, cmd.count, cmd.clean, 0);
  const subscribe = cmd.subscribe ? subscribePacket(`bench/${cmd.idPrefix}`) : undefined;
  const latencies = new Float64Array(cmd.count);
  let done = 0;
  let sessionPresent = 0;
  const tracker = new Tracker(cmd.limitMs);
  const meter = new Meter(cmd.watch);

  const one = async (i: number): Promise<void> => {
    const t0 = performance.now();
    const conn = tracker.open(cmd.endpoints[i % cmd.endpoints.length]!);
    try {
      conn.send(connects[i]!);
      const connack = await conn.expect(PacketType.CONNACK);
      const latency = performance.now() - t0;
      if (connack[1] !== 0) throw new Error(`CONNACK return code ${connack[1]}`);
      if (subscribe) {
        conn.send(subscribe);
        await conn.expect(PacketType.SUBACK);
      }
      await conn.disconnect();
      latencies[done++] = latency;
      if ((connack[0]! & 0x01) === 1) sessionPresent++;
    } catch (err) {
      tracker.fail(err);
      conn.destroy();
    }
  };
  const worker = async (w: number): Promise<void> => {
    for (let i = w; i < cmd.count && !tracker.expired; i += cmd.concurrency) await one(i);
  };

  meter.start();
  await Promise.all(Array.from({ length: Math.min(cmd.concurrency, cmd.count) }, (_, w) => worker(w)));
  const reading = meter.stop();
  tracker.finish();
  return {
    ...reading,
    ok: done,
    errors: tracker.errors,
    ...(tracker.firstError ? { firstError: tracker.firstError } : {}),
    latencyMs: summarize(latencies.subarray(0, done)),
    sessionPresent,
  };
}

/**
 * Opens `count` persistent connections (CONNECT clean, keepalive 0, CONNACK), `concurrency` at a
 * time, for the scenarios that then use them. Returns those that got their CONNACK.
 */
export async function openClients(tracker: Tracker, cmd: { endpoints: readonly Endpoint[]; idPrefix: string }, count: number, concurrency: number): Promise<BenchConn[]> {
  const connects = connectPackets(cmd.idPrefix, count, true, 0);
  const open: BenchConn[] = [];
  const worker = async (w: number): Promise<void> => {
    for (let i = w; i < count && !tracker.expired; i += concurrency) {
      const conn = tracker.open(cmd.endpoints[i % cmd.endpoints.length]!);
      try {
        conn.send(connects[i]!);
        const connack = await conn.expect(PacketType.CONNACK);
        if (connack[1] !== 0) throw new Error(`CONNACK return code ${connack[1]}`);
        open.push(conn);
      } catch (err) {
        tracker.fail(err);
        conn.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, (_, w) => worker(w)));
  return open;
}
