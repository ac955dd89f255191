import { createLogger, Stats, validateOptions, type ConnInfo, type Extractor, type ExtractorPlugin } from '@tether/core';
import type { IConnectPacket } from 'mqtt-packet';

/** A connection as the pipeline hands it to extractors, with the given CONNECT fields. */
export const conn = (fields: Partial<IConnectPacket>): ConnInfo => ({
  id: 1, remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, family: 'IPv4',
  connect: { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: '', ...fields } as IConnectPacket,
  protocolVersion: 4, persistentSession: false, key: undefined, keySource: undefined, dryRun: false, attributes: new Map(),
});

/** Creates the extractor the way the core does: validated (empty) options, a real context. */
export async function make(plugin: ExtractorPlugin): Promise<Extractor> {
  const ctx = { log: createLogger('silent'), stats: new Stats().scope(plugin.name), now: Date.now, signal: new AbortController().signal };
  return plugin.create(ctx, validateOptions(plugin, {}));
}
