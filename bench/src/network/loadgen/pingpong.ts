import { PacketType } from '../mqtt-frames.ts';
import { summarize } from '../stats.ts';
import { openClients } from './connect-storm.ts';
import { Meter } from './meter.ts';
import { PINGREQ } from './packets.ts';
import type { PingPongCommand, PingPongResult } from './protocol.ts';
import { Tracker } from './conn.ts';

/** Round trips kept for percentiles; beyond it they are counted but not kept (bounded memory). */
const MAX_SAMPLES = 2_000_000;

/**
 * Ping-pong: `clients` connections, each sending PINGREQ and waiting for its PINGRESP before the
 * next, for `durationMs`. Measures round-trip latency through the path under that much load.
 */
export async function pingPong(cmd: PingPongCommand): Promise<PingPongResult> {
  const tracker = new Tracker(cmd.limitMs);
  const conns = await openClients(tracker, cmd, cmd.clients, cmd.clients);
  const samples = new Float64Array(Math.min(MAX_SAMPLES, Math.max(1024, cmd.durationMs * 200)));
  let kept = 0;
  let roundTrips = 0;
  const meter = new Meter(cmd.watch);
  meter.start();
  const deadline = performance.now() + cmd.durationMs;
  await Promise.all(
    conns.map(async (conn) => {
      // Bounded by the deadline; the hard limit ends an await that never returns.
      while (!tracker.expired) {
        const t0 = performance.now();
        if (t0 >= deadline) break;
        conn.send(PINGREQ);
        try {
          await conn.expect(PacketType.PINGRESP);
        } catch (err) {
          tracker.fail(err);
          return;
        }
        roundTrips++;
        if (kept < samples.length) samples[kept++] = (performance.now() - t0) * 1000;
      }
    }),
  );
  const reading = meter.stop();
  await Promise.all(conns.map((c) => c.disconnect()));
  tracker.finish();
  return {
    ...reading,
    ok: roundTrips,
    errors: tracker.errors,
    ...(tracker.firstError ? { firstError: tracker.firstError } : {}),
    latencyUs: summarize(samples.subarray(0, kept)),
  };
}
