import { once, type EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { within } from './cli.ts';

const clients = new Set<MqttClient>();

/** Never reconnects on its own (a test decides), and gives up connecting after 10 s. */
const DEFAULTS: IClientOptions = { reconnectPeriod: 0, connectTimeout: 10_000, keepalive: 60 };

export interface Connected {
  readonly client: MqttClient;
  readonly connack: IConnackPacket;
  /** Every message received since the connection opened (also those sent right after the CONNACK). */
  readonly messages: { topic: string; payload: string }[];
}

/** Connects a real MQTT client and resolves with it and its CONNACK; rejects on error or after 15 s. */
export async function connectClient(url: string, options: IClientOptions): Promise<Connected> {
  const client = mqtt.connect(url, { ...DEFAULTS, ...options });
  clients.add(client);
  const messages: { topic: string; payload: string }[] = [];
  client.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString() }));
  const failed = once(client as unknown as EventEmitter, 'error').then(([err]) => {
    throw err as Error;
  });
  const closedEarly = once(client as unknown as EventEmitter, 'close').then(() => {
    throw new Error(`connection of ${String(options.clientId)} to ${url} closed before CONNACK`);
  });
  const connected = once(client as unknown as EventEmitter, 'connect') as Promise<[IConnackPacket]>;
  const [connack] = await within(Promise.race([connected, failed, closedEarly]), 15_000, `MQTT connect of ${String(options.clientId)} to ${url}`);
  failed.catch(() => undefined);
  closedEarly.catch(() => undefined);
  return { client, connack, messages };
}

/** Resolves with the next message the client receives, or rejects after `ms`. */
export function nextMessage(client: MqttClient, ms = 10_000): Promise<{ topic: string; payload: string }> {
  const message = new Promise<{ topic: string; payload: string }>((resolve) => {
    client.once('message', (topic, payload) => resolve({ topic, payload: payload.toString() }));
  });
  return within(message, ms, 'an MQTT message');
}

/** Closes a client gracefully (DISCONNECT), bounded. */
export async function disconnect(client: MqttClient): Promise<void> {
  await within(client.endAsync(), 10_000, 'MQTT disconnect');
  clients.delete(client);
}

/** Forcibly closes every client still open (afterEach). */
export async function closeAllClients(): Promise<void> {
  await Promise.all([...clients].map((c) => new Promise<void>((resolve) => c.end(true, {}, () => resolve()))));
  clients.clear();
}
