import { pino } from 'pino';
import type { Logger } from 'pino';
import type { PeerChannel } from '../plugin.ts';
import type { IpcPort, PrimaryMessage, WorkerMessage } from './messages.ts';
import { PeerRelay, type WorkerLink } from './peer-relay.ts';
import { WorkerPeers } from './worker-peers.ts';

/** One simulated worker of a TestPeerNetwork. */
export interface TestPeer {
  readonly id: number;
  /** The channel a plugin would get as `ctx.peers` (one per chain entry; same name on every worker). */
  channel(name?: string): PeerChannel;
  /** Joins the others and waits for their snapshot, as a worker does before it listens. */
  sync(timeoutMs?: number): Promise<boolean>;
  /** The worker dies: it receives nothing more, and a snapshot it was giving is asked of another. */
  leave(): void;
}

export interface TestPeerNetwork {
  /** A new worker (ids 1, 2, …), not yet joined: create the plugin with its channel, then `sync()`. */
  add(): TestPeer;
  /** Resolves once no message is in flight any more (bounded: throws after 10,000 event-loop turns). */
  settle(): Promise<void>;
}

/**
 * The peer channels of several workers in one process, for testing a plugin's sharing without
 * processes: the real relay (the primary's ordering) and the real worker side, with IPC replaced
 * by an in-order queue delivered on later event-loop turns, as IPC would.
 */
export function createPeerNetwork(log: Logger = pino({ level: 'silent' })): TestPeerNetwork {
  const relay = new PeerRelay();
  const queue: (() => void)[] = [];
  let scheduled = false;
  const drain = (): void => {
    scheduled = false;
    for (const deliver of queue.splice(0)) deliver();
  };
  const post = (deliver: () => void): void => {
    queue.push(deliver);
    if (!scheduled) {
      scheduled = true;
      setImmediate(drain);
    }
  };
  let nextId = 1;
  return {
    add(): TestPeer {
      const id = nextId++;
      let alive = true;
      const handlers: ((message: PrimaryMessage) => void)[] = [];
      const link: WorkerLink = { id, send: (message) => post(() => alive && handlers.forEach((h) => h(message))) };
      const port: IpcPort<PrimaryMessage, WorkerMessage> = {
        send: (message) => post(() => alive && relay.handle(link, message)),
        onMessage: (handler) => handlers.push(handler),
      };
      const peers = new WorkerPeers(port, id, log, 0);
      return {
        id,
        channel: (name = 'strategy:0:test') => peers.channel(name),
        sync: (timeoutMs = 5_000) => peers.sync(timeoutMs),
        leave: () => {
          alive = false;
          relay.leave(id);
        },
      };
    },
    async settle(): Promise<void> {
      let quiet = 0;
      for (let turn = 0; turn < 10_000; turn++) {
        await new Promise((resolve) => setImmediate(resolve));
        quiet = queue.length === 0 && !scheduled ? quiet + 1 : 0;
        if (quiet >= 3) return;
      }
      throw new Error('peer messages still in flight after 10,000 event-loop turns');
    },
  };
}
