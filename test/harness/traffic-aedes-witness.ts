import type { EmbeddedBroker } from '@tether/embedded-broker';
import type { Client } from 'aedes';
import { withTimeout } from './traffic-wait.ts';

/** One MQTT session start as an aedes broker saw it. */
export interface Landing {
  /** The broker's id (`embedded1`, ...), which the tests also use as the Tether backend name. */
  readonly broker: string;
  readonly clientId: string;
  /** The protocol level the broker negotiated: 3 (3.1) or 4 (3.1.1). */
  readonly version: number;
}

type Waiter = (event: Landing) => boolean;

/**
 * Records which broker each client connected to and disconnected from, from the brokers' own
 * `client` and `clientDisconnect` events. This is the ground truth for stickiness: it does not
 * ask Tether where it sent a client, it asks the brokers who they saw.
 */
export class AedesWitness {
  readonly landings: Landing[] = [];
  readonly departures: Landing[] = [];
  readonly #landingWaiters = new Set<Waiter>();
  readonly #departureWaiters = new Set<Waiter>();
  readonly #detach: (() => void)[] = [];

  constructor(brokers: readonly EmbeddedBroker[]) {
    for (const broker of brokers) {
      const toEvent = (client: Client): Landing => ({ broker: broker.id, clientId: client.id, version: client.version });
      const onClient = (client: Client): void => this.#record(this.landings, this.#landingWaiters, toEvent(client));
      const onGone = (client: Client): void => this.#record(this.departures, this.#departureWaiters, toEvent(client));
      broker.aedes.on('client', onClient);
      broker.aedes.on('clientDisconnect', onGone);
      this.#detach.push(() => {
        broker.aedes.off('client', onClient);
        broker.aedes.off('clientDisconnect', onGone);
      });
    }
  }

  /** Brokers that have seen `clientId` connect, in order, one entry per connection. */
  landingsOf(clientId: string): string[] {
    return this.landings.filter((l) => l.clientId === clientId).map((l) => l.broker);
  }

  /**
   * Resolves with the next connection of `clientId` on any broker. Call it before connecting: aedes
   * may emit the event a moment after the CONNACK (when it first has to close an older connection
   * with the same id), so the promise is what the test awaits, bounded by `ms`.
   */
  nextLanding(clientId: string, ms = 10_000): Promise<Landing> {
    return this.#next(this.#landingWaiters, clientId, ms, `broker to see ${clientId} connect`);
  }

  /** Resolves once a broker has noticed that `clientId` left. Call it before disconnecting. */
  nextDeparture(clientId: string, ms = 10_000): Promise<Landing> {
    return this.#next(this.#departureWaiters, clientId, ms, `broker to see ${clientId} disconnect`);
  }

  detach(): void {
    for (const off of this.#detach.splice(0)) off();
  }

  #next(waiters: Set<Waiter>, clientId: string, ms: number, what: string): Promise<Landing> {
    let waiter: Waiter | undefined;
    const promise = new Promise<Landing>((resolve) => {
      waiter = (event) => {
        if (event.clientId !== clientId) return false;
        resolve(event);
        return true;
      };
      waiters.add(waiter);
    });
    return withTimeout(promise, ms, what).finally(() => waiters.delete(waiter!));
  }

  #record(list: Landing[], waiters: Set<Waiter>, event: Landing): void {
    list.push(event);
    for (const waiter of [...waiters]) if (waiter(event)) waiters.delete(waiter);
  }
}
