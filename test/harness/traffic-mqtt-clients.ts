import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import { withTimeout } from './traffic-wait.ts';

/** One message as an mqtt.js client received it. */
export interface Received {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: number;
  readonly packet: IPublishPacket;
}

/**
 * Collects the messages of a client and lets a test await a condition on them. It is attached
 * before the client connects: a persistent session's queued messages arrive right after the
 * CONNACK, before any `await` after connecting could add a listener.
 */
export class Inbox {
  readonly messages: Received[] = [];
  readonly #waiters = new Set<() => void>();

  attach(client: MqttClient): void {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload, qos: packet.qos, packet });
      for (const waiter of [...this.#waiters]) waiter();
    });
  }

  /** Payloads as UTF-8 text, in arrival order. */
  texts(): string[] {
    return this.messages.map((m) => m.payload.toString('utf8'));
  }

  /** Resolves once `done(messages)` holds; each arriving message re-checks it. Bounded by `ms`. */
  until(what: string, done: (messages: readonly Received[]) => boolean, ms = 15_000): Promise<void> {
    if (done(this.messages)) return Promise.resolve();
    let waiter: (() => void) | undefined;
    const promise = new Promise<void>((resolve) => {
      waiter = () => {
        if (done(this.messages)) resolve();
      };
      this.#waiters.add(waiter);
    });
    return withTimeout(promise, ms, what).finally(() => this.#waiters.delete(waiter!));
  }

  clear(): void {
    this.messages.length = 0;
  }
}

export interface Connected {
  readonly client: MqttClient;
  readonly connack: IConnackPacket;
}

/**
 * Creates mqtt.js clients that never reconnect on their own (a test decides when a client comes
 * back), remembers them, and force-closes whatever is still open in `closeAll` (afterEach).
 */
export class ClientPool {
  readonly #clients = new Set<MqttClient>();

  /**
   * Connects and resolves with the CONNACK, or rejects on an error, a close before the CONNACK, or
   * after `ms`. An inbox, if given, is attached before the connection starts.
   */
  async connect(url: string | undefined, options: IClientOptions, inbox?: Inbox, ms = 10_000): Promise<Connected> {
    const opts: IClientOptions = { reconnectPeriod: 0, connectTimeout: ms, ...options };
    const client = url === undefined ? mqtt.connect(opts) : mqtt.connect(url, opts);
    this.#clients.add(client);
    client.once('end', () => this.#clients.delete(client));
    inbox?.attach(client);
    const connack = await withTimeout(
      new Promise<IConnackPacket>((resolve, reject) => {
        const onConnect = (packet: IConnackPacket): void => {
          cleanup();
          resolve(packet);
        };
        const onError = (err: Error): void => {
          cleanup();
          reject(err);
        };
        const onClose = (): void => {
          cleanup();
          reject(new Error(`connection of ${options.clientId ?? '(no id)'} closed before CONNACK`));
        };
        const cleanup = (): void => {
          client.off('connect', onConnect);
          client.off('error', onError);
          client.off('close', onClose);
        };
        client.on('connect', onConnect);
        client.on('error', onError);
        client.on('close', onClose);
      }),
      ms,
      `CONNACK for ${options.clientId ?? '(no id)'}`,
    ).catch((err: unknown) => {
      client.end(true);
      throw err;
    });
    // Later errors (a broker closing at teardown) must not become unhandled 'error' events.
    client.on('error', () => undefined);
    return { client, connack };
  }

  /** A clean MQTT DISCONNECT, bounded: the broker then treats the session as offline. */
  async disconnect(client: MqttClient, ms = 10_000): Promise<void> {
    await withTimeout(client.endAsync(), ms, 'client to disconnect');
    this.#clients.delete(client);
  }

  async closeAll(): Promise<void> {
    const open = [...this.#clients];
    this.#clients.clear();
    await Promise.all(open.map((c) => withTimeout(c.endAsync(true), 5000, 'client to close').catch(() => undefined)));
  }
}
