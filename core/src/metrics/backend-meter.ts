import type { Socket } from 'node:net';
import type { Histogram } from 'prom-client';

/**
 * What one backend's connections have done, kept as plain numbers by the data path and read at
 * scrape time. Byte counts of closed connections are added up here; those of live connections
 * are read from their client sockets at scrape time (`liveBytes`), so a connection open for days
 * shows its traffic as it flows rather than all at once when it closes, and the data path counts
 * nothing per chunk.
 */
export class BackendMeter {
  /** Connections spliced to this backend. */
  connections = 0;
  connectFailures = 0;
  /** Bytes from clients (requests) and to clients (responses) of the connections already closed. */
  closedBytesIn = 0;
  closedBytesOut = 0;
  /** The client sockets of the live spliced connections. */
  readonly live = new Set<Socket>();
  /** Persistent clients sent here because their key was remembered, accepted by the broker. */
  stickinessChecks = 0;
  /** Of those, the ones the broker answered without a session (session present 0). */
  stickinessMisses = 0;
  /** CONNACKs that refused the client, by return or reason code. */
  readonly refused = new Map<number, number>();
  /** First packets from the broker that were not a CONNACK. */
  invalidConnacks = 0;
  readonly #connect: Histogram.Internal<'backend'>;

  constructor(connect: Histogram.Internal<'backend'>) {
    this.#connect = connect;
  }

  connectFailed(): void {
    this.connectFailures++;
  }

  /** The TCP connection to the backend took `ms`. */
  connected(ms: number): void {
    this.#connect.observe(ms / 1000);
  }

  opened(client: Socket): void {
    this.connections++;
    this.live.add(client);
  }

  closed(client: Socket, bytesIn: number, bytesOut: number): void {
    this.live.delete(client);
    this.closedBytesIn += bytesIn;
    this.closedBytesOut += bytesOut;
  }

  refusedWith(code: number): void {
    this.refused.set(code, (this.refused.get(code) ?? 0) + 1);
  }

  /** Bytes in and out so far, closed and live connections together. Scrape time only: reads every live socket. */
  bytes(): { readonly in: number; readonly out: number } {
    let bytesIn = this.closedBytesIn;
    let bytesOut = this.closedBytesOut;
    for (const socket of this.live) {
      bytesIn += socket.bytesRead;
      bytesOut += socket.bytesWritten;
    }
    return { in: bytesIn, out: bytesOut };
  }
}
