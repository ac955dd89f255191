import { createLogger, Stats, validateOptions, type ConnInfo, type Extractor, type ExtractorPlugin } from '@tether/core';
import { testConn } from '@tether/core/testing';
import type { IConnectPacket } from 'mqtt-packet';

/** A connection as the pipeline hands it to extractors, with the given CONNECT fields. */
export const conn = (fields: Partial<IConnectPacket>): ConnInfo => testConn({ connect: { clientId: '', ...fields } });

/** Creates the extractor the way the core does: validated (empty) options, a real context. */
export async function make(plugin: ExtractorPlugin): Promise<Extractor> {
  const ctx = { log: createLogger('silent'), stats: new Stats().scope(plugin.name), now: Date.now, signal: new AbortController().signal, backends: [] };
  return plugin.create(ctx, validateOptions(plugin, {}));
}
