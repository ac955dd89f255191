import { treeRssKiB } from '../proc-stat.ts';
import { openClients } from './connect-storm.ts';
import { Meter } from './meter.ts';
import type { HoldCommand, HoldResult, ReleaseCommand, ReleaseResult } from './protocol.ts';
import { Tracker, type BenchConn } from './conn.ts';

/** The connections of the current hold, kept between `hold` and `release`. */
let held: BenchConn[] = [];

/**
 * Idle hold: opens `count` connections and keeps them open, reading the watched processes' RSS
 * before and once every CONNACK is in (so the balancer has spliced every one of them).
 */
export async function hold(cmd: HoldCommand): Promise<HoldResult> {
  if (held.length > 0) throw new Error('hold: the previous hold was not released');
  const tracker = new Tracker(cmd.limitMs);
  const meter = new Meter(cmd.watch);
  const rssBeforeKiB = cmd.watch.map((pid) => treeRssKiB(pid) ?? null);
  meter.start();
  const open = await openClients(tracker, cmd, cmd.count, cmd.concurrency);
  const reading = meter.stop();
  const rssAfterKiB = cmd.watch.map((pid) => treeRssKiB(pid) ?? null);
  // From here on the connections outlive the command: no hard limit until `release`.
  tracker.keep();
  held = open;
  return {
    ...reading,
    ok: open.length,
    errors: tracker.errors,
    ...(tracker.firstError ? { firstError: tracker.firstError } : {}),
    rssBeforeKiB,
    rssAfterKiB,
  };
}

/** DISCONNECTs every held connection and waits (bounded) for them to close. */
export async function release(cmd: ReleaseCommand): Promise<ReleaseResult> {
  const conns = held;
  held = [];
  const dropped = conns.filter((c) => c.isClosed).length;
  const timer = setTimeout(() => conns.forEach((c) => c.destroy()), cmd.limitMs);
  await Promise.all(conns.map((c) => c.disconnect()));
  clearTimeout(timer);
  return { closed: conns.length - dropped, dropped };
}
