import type { PrimaryMessage, WorkerMessage } from './messages.ts';

/** A worker as the primary reaches it. */
export interface WorkerLink {
  readonly id: number;
  send(message: PrimaryMessage): void;
}

/**
 * The primary's half of the peer channels: the one place that orders broadcasts. Every batch a
 * worker sends is numbered and relayed, in arrival order, to every worker that has joined (the
 * sender included), so all of them apply the same sequence.
 *
 * A worker joins by sending `sync`. From then on it receives every batch, and the oldest joined
 * worker that has itself completed its join is asked for a snapshot on its behalf; its chunks and
 * the closing `snapshot-end` (with the seq the snapshot includes) are passed through. When that
 * worker dies mid-way, the next oldest is asked; when there is none (the first worker, or all
 * others gone), the join completes at once with nothing.
 */
export class PeerRelay {
  #seq = 0;
  /** Joined workers, oldest first (a Map keeps insertion order). */
  readonly #joined = new Map<number, WorkerLink>();
  /** Joined workers whose own state is complete: those that may answer for a newcomer. */
  readonly #ready = new Set<number>();
  /** requester → provider, for joins in progress. */
  readonly #pending = new Map<number, number>();

  /** Handles a worker's message if it is about peers; returns false for any other message. */
  handle(from: WorkerLink, message: WorkerMessage): boolean {
    switch (message.t) {
      case 'tether:peers': {
        if (message.batch.length === 0) return true;
        const relayed: PrimaryMessage = { t: 'tether:peers', seq: ++this.#seq, from: from.id, batch: message.batch };
        for (const link of this.#joined.values()) link.send(relayed);
        return true;
      }
      case 'tether:sync':
        this.#joined.delete(from.id);
        this.#ready.delete(from.id);
        this.#joined.set(from.id, from);
        this.#ask(from.id);
        return true;
      case 'tether:snapshot-chunk':
        if (this.#pending.get(message.to) === from.id) this.#joined.get(message.to)?.send({ t: 'tether:snapshot-chunk', channel: message.channel, chunk: message.chunk });
        return true;
      case 'tether:snapshot-end':
        if (this.#pending.get(message.to) === from.id) this.#finish(message.to, message.seq);
        return true;
      default:
        return false;
    }
  }

  /** A worker is gone: it receives nothing more, and joins it was answering are asked of another. */
  leave(id: number): void {
    this.#joined.delete(id);
    this.#ready.delete(id);
    this.#pending.delete(id);
    for (const [requester, provider] of [...this.#pending]) if (provider === id) this.#ask(requester);
  }

  /** Workers that receive broadcasts, oldest first. */
  get joined(): readonly number[] {
    return [...this.#joined.keys()];
  }

  #ask(requester: number): void {
    const provider = [...this.#joined.keys()].find((id) => id !== requester && this.#ready.has(id));
    if (provider === undefined) return this.#finish(requester, 0);
    this.#pending.set(requester, provider);
    this.#joined.get(provider)!.send({ t: 'tether:snapshot-request', to: requester });
  }

  #finish(requester: number, seq: number): void {
    this.#pending.delete(requester);
    const link = this.#joined.get(requester);
    if (!link) return;
    this.#ready.add(requester);
    link.send({ t: 'tether:snapshot-end', seq });
  }
}
