import type { Logger } from 'pino';
import { describe } from '../errors.ts';
import type { PeerChannel } from '../plugin.ts';
import type { IpcPort, PeerEnvelope, PrimaryMessage, WorkerMessage } from './messages.ts';

interface Channel {
  onMessage?: (message: unknown, from: number) => void;
  provider?: () => Iterable<unknown>;
  onSnapshot?: (chunk: unknown) => void;
}

type RelayedBatch = Extract<PrimaryMessage, { t: 'tether:peers' }>;

/** Broadcasts are collected this long before they are sent (see the constructor). */
export const DEFAULT_FLUSH_DELAY_MS = 20;

/**
 * The worker's end of the plugins' peer channels (`ctx.peers`). Broadcasts made within a few
 * milliseconds go to the primary as one IPC message; relayed batches arrive numbered (`seq`) in the primary's
 * order and are handed to each channel's handler. While the worker joins (`sync`), relayed batches
 * are held back until the snapshot has been applied, then those newer than the snapshot follow.
 */
export class WorkerPeers {
  readonly self: number;
  readonly #port: IpcPort<PrimaryMessage, WorkerMessage>;
  readonly #log: Logger;
  readonly #channels = new Map<string, Channel>();
  readonly #names = new WeakMap<PeerChannel, string>();
  #outbox: PeerEnvelope[] = [];
  #flushScheduled = false;
  /** seq of the last relayed batch applied here: a snapshot taken now includes everything up to it. */
  #lastSeq = 0;
  /** While joining: relayed batches held back until the snapshot has been applied. */
  #held: RelayedBatch[] | undefined;
  #joined: ((complete: boolean) => void) | undefined;

  readonly #flushDelayMs: number;

  /**
   * `flushDelayMs`: how long broadcasts are collected before they go to the primary as one IPC
   * message (0: at the end of the event-loop turn). A few milliseconds turn a connection storm's
   * one message per connection into one per burst, which is most of the cost of sharing.
   */
  constructor(port: IpcPort<PrimaryMessage, WorkerMessage>, self: number, log: Logger, flushDelayMs = DEFAULT_FLUSH_DELAY_MS) {
    this.#flushDelayMs = flushDelayMs;
    this.#port = port;
    this.self = self;
    this.#log = log;
    port.onMessage((message) => this.#handle(message));
  }

  /**
   * The channel of one chain entry. Names are made unique in creation order (`name#2`, …), which
   * is the configuration's order and so the same on every worker.
   */
  channel(base: string): PeerChannel {
    let name = base;
    for (let i = 2; this.#channels.has(name); i++) name = `${base}#${i}`;
    const channel: Channel = {};
    this.#channels.set(name, channel);
    const once = <K extends keyof Channel>(key: K, value: Channel[K]): void => {
      if (channel[key]) throw new Error(`peers.${key} may be set only once`);
      channel[key] = value;
    };
    const peer: PeerChannel = {
      self: this.self,
      broadcast: (message) => this.#queue([name, message]),
      onMessage: (handler) => once('onMessage', handler),
      onSnapshotRequest: (provider) => once('provider', provider),
      onSnapshot: (handler) => once('onSnapshot', handler),
    };
    this.#names.set(peer, name);
    return peer;
  }

  /** Closes a channel: its plugin was retired by a reload. Messages still on their way to it are dropped. */
  release(channel: PeerChannel): void {
    const name = this.#names.get(channel);
    if (name === undefined) return;
    this.#names.delete(channel);
    this.#channels.delete(name);
  }

  /**
   * Joins the other workers: from now on this worker receives every broadcast, and it asks for the
   * current state. Resolves true once the snapshot has been applied, false if it did not come
   * within `timeoutMs` (the worker then goes on with what it has, and logs why).
   */
  sync(timeoutMs: number): Promise<boolean> {
    this.#held = [];
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.#log.warn({ timeoutMs }, 'no state snapshot from the other workers in time: starting with what has arrived');
        this.#finishJoin(0, false);
      }, timeoutMs);
      timer.unref();
      this.#joined = (complete) => {
        clearTimeout(timer);
        resolve(complete);
      };
      this.#port.send({ t: 'tether:sync' });
    });
  }

  #queue(envelope: PeerEnvelope): void {
    this.#outbox.push(envelope);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    const flush = (): void => {
      this.#flushScheduled = false;
      const batch = this.#outbox;
      this.#outbox = [];
      this.#port.send({ t: 'tether:peers', batch });
    };
    if (this.#flushDelayMs > 0) setTimeout(flush, this.#flushDelayMs);
    else setImmediate(flush);
  }

  #handle(message: PrimaryMessage): void {
    switch (message.t) {
      case 'tether:peers':
        if (this.#held) this.#held.push(message);
        else this.#apply(message);
        return;
      case 'tether:snapshot-request':
        void this.#sendSnapshot(message.to);
        return;
      case 'tether:snapshot-chunk': {
        const handler = this.#channels.get(message.channel)?.onSnapshot;
        if (handler) this.#call(message.channel, 'onSnapshot', () => handler(message.chunk));
        return;
      }
      case 'tether:snapshot-end':
        this.#finishJoin(message.seq, true);
        return;
      default:
    }
  }

  #apply(batch: RelayedBatch): void {
    this.#lastSeq = batch.seq;
    for (const [name, payload] of batch.batch) {
      const handler = this.#channels.get(name)?.onMessage;
      if (handler) this.#call(name, 'onMessage', () => handler(payload, batch.from));
    }
  }

  /** Applies what was held back and is newer than the snapshot (seq above `seq`), then runs live. */
  #finishJoin(seq: number, complete: boolean): void {
    const held = this.#held;
    const joined = this.#joined;
    if (!held || !joined) return;
    this.#held = undefined;
    this.#joined = undefined;
    for (const batch of held) if (batch.seq > seq) this.#apply(batch);
    joined(complete);
  }

  /**
   * Streams every channel's snapshot to the worker `to`, one chunk per IPC message, yielding to
   * the event loop between chunks so that a large table does not stall this worker's connections.
   */
  async #sendSnapshot(to: number): Promise<void> {
    const seq = this.#lastSeq;
    for (const [name, channel] of this.#channels) {
      if (!channel.provider) continue;
      try {
        for (const chunk of channel.provider()) {
          this.#port.send({ t: 'tether:snapshot-chunk', to, channel: name, chunk });
          await new Promise((resolve) => setImmediate(resolve));
        }
      } catch (err) {
        this.#log.warn({ channel: name, err: describe(err) }, 'peer snapshot provider failed');
      }
    }
    this.#port.send({ t: 'tether:snapshot-end', to, seq });
  }

  #call(channel: string, hook: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log.warn({ channel, hook, err: describe(err) }, 'peer message handler failed');
    }
  }
}
