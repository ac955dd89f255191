import type { Logger, PeerChannel } from '@tether/core';
import type { StickTable } from './stick-table.ts';
import { announceInterval, TOUCH_FLUSH_MS, TouchBatch } from './touch-batch.ts';

/**
 * The stick table across the workers of one balancer (`workers` above 1), over the plugin's peer
 * channel. Messages, all idempotent overwrites so that replaying one changes nothing:
 *
 *   ['l', key, backend]          learned: a connection with this key was spliced to this backend
 *                                (sets the backend everywhere; the last learn in the primary's
 *                                order wins). Sent at once, only when the key was new here or its
 *                                backend changed: a reconnect to the same backend changes nothing.
 *   ['t', [[key, backend], …]]   touched: these keys' connections closed, or are still open
 *                                (refreshes last-seen so idle expiry agrees; the backend only
 *                                fills a missing entry). Collected and sent every TOUCH_FLUSH_MS.
 *
 * Snapshot chunks for a joining worker: [[key, backend, ms since last seen], …], at most
 * SNAPSHOT_CHUNK entries each.
 */

const SNAPSHOT_CHUNK = 500;
/** Keys per touch message. */
const TOUCH_BATCH = 1_000;

export { announceInterval, TOUCH_FLUSH_MS };

export interface PeerSyncOptions {
  readonly peers: PeerChannel;
  readonly table: StickTable;
  readonly mode: 'learn' | 'match-only';
  readonly expireMs: number;
  readonly now: () => number;
  readonly signal: AbortSignal;
  readonly log: Logger;
}

export interface PeerSync {
  /** This worker stored `key` → `backend` (onSpliced); `changed`: the key was new here or moved. */
  learned(key: string, backend: string, changed: boolean): void;
  /** A connection of this worker with `key` closed (onClosed). */
  closed(key: string, backend: string): void;
}

export function syncAcrossWorkers(options: PeerSyncOptions): PeerSync {
  const { peers, table, mode, log } = options;
  // match-only never adds entries, not even those another worker has.
  const create = mode === 'learn';
  peers.onMessage((message) => {
    if (!Array.isArray(message)) return;
    const [op, a, b] = message as unknown[];
    if (op === 'l' && typeof a === 'string' && typeof b === 'string') table.remote(a, b, { overwrite: true, create });
    else if (op === 't' && Array.isArray(a)) {
      for (const row of a as unknown[]) {
        if (!Array.isArray(row)) continue;
        const [key, backend] = row as unknown[];
        if (typeof key === 'string' && typeof backend === 'string') table.remote(key, backend, { overwrite: false, create });
      }
    }
  });
  peers.onSnapshotRequest(() => table.chunks(SNAPSHOT_CHUNK));
  peers.onSnapshot((chunk) => {
    if (!Array.isArray(chunk)) return;
    const now = options.now();
    for (const row of chunk as unknown[]) {
      if (!Array.isArray(row)) continue;
      const [key, backend, age] = row as unknown[];
      if (typeof key === 'string' && typeof backend === 'string' && typeof age === 'number') table.remote(key, backend, { overwrite: true, create, lastSeen: now - age });
    }
  });

  // Touches wait (one per key) and go out once a second; keys in use here are re-announced well
  // within `expire`.
  const touches = new TouchBatch({
    flushMs: TOUCH_FLUSH_MS,
    announceMs: announceInterval(options.expireMs),
    busyEntries: () => table.busyEntries(),
    flush: (rows) => {
      for (let i = 0; i < rows.length; i += TOUCH_BATCH) peers.broadcast(['t', rows.slice(i, i + TOUCH_BATCH)]);
    },
    signal: options.signal,
  });
  log.debug({ worker: peers.self }, 'stick table shared with the other workers');

  return {
    learned(key, backend, changed) {
      if (changed && mode === 'learn') peers.broadcast(['l', key, backend]);
      else touches.touch(key, backend);
    },
    closed: (key, backend) => touches.touch(key, backend),
  };
}
