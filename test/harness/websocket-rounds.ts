import type { MqttClient } from 'mqtt';
import { expect } from 'vitest';
import type { AedesWitness } from './traffic-aedes-witness.ts';
import { Inbox, type ClientPool } from './traffic-mqtt-clients.ts';

export const ROUNDS = 6;

/**
 * A persistent subscriber connects over ws, subscribes; then ROUNDS times it disconnects, two QoS 1
 * messages are published for it on its home broker directly, and it reconnects over ws.
 * Every round must deliver the queued messages (only the home broker holds them); returns, per
 * round, where it landed and whether the session was present.
 */
export async function reconnectRounds(pool: ClientPool, url: string, clientId: string, homeOf: () => Promise<string>, landing: () => Promise<string>, portOf: (broker: string) => number, departed: () => Promise<unknown>): Promise<{ home: string; landed: string[]; sessionPresent: boolean[] }> {
  const inbox = new Inbox();
  const first = await pool.connect(url, { clientId, clean: false }, inbox);
  expect(first.connack.sessionPresent).toBe(false);
  await first.client.subscribeAsync(`ws/${clientId}/#`, { qos: 1 });
  const home = await homeOf();
  const publisher = (await pool.connect(`mqtt://127.0.0.1:${portOf(home)}`, { clientId: `${clientId}-pub`, clean: true })).client;
  const landed: string[] = [];
  const sessionPresent: boolean[] = [];
  let current: MqttClient = first.client;
  for (let round = 1; round <= ROUNDS; round++) {
    const gone = departed();
    await pool.disconnect(current);
    await gone;
    const texts = [`r${round} a`, `r${round} b`];
    for (const text of texts) await publisher.publishAsync(`ws/${clientId}/${round}`, text, { qos: 1 });
    const landingNow = landing();
    const again = await pool.connect(url, { clientId, clean: false }, inbox);
    const broker = await landingNow;
    landed.push(broker);
    sessionPresent.push(again.connack.sessionPresent);
    await inbox.until(`round ${round}'s queued messages`, (msgs) => texts.every((t) => msgs.some((m) => m.payload.toString() === t && m.qos === 1)));
    current = again.client;
  }
  await pool.disconnect(current);
  return { home, landed, sessionPresent };
}


/** reconnectRounds against embedded aedes brokers, where the witness says where each connection landed and left. */
export function aedesReconnectRounds(pool: ClientPool, url: string, clientId: string, brokers: readonly { id: string; port: number }[], witness: AedesWitness): Promise<{ home: string; landed: string[]; sessionPresent: boolean[] }> {
  const firstLanding = witness.nextLanding(clientId);
  return reconnectRounds(
    pool,
    url,
    clientId,
    async () => (await firstLanding).broker,
    async () => (await witness.nextLanding(clientId)).broker,
    (id) => brokers.find((b) => b.id === id)!.port,
    () => witness.nextDeparture(clientId),
  );
}
