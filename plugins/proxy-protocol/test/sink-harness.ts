import { createLogger, Stats, validateOptions, type Backend, type Sink } from '@tether/core';
import { PassThrough } from 'node:stream';
import proxyProtocol from '../src/index.ts';

// The sink writes the header into the upstream stream before the pipeline replays the client's
// bytes. A PassThrough stands in for the upstream socket.

export const backend = (sendProxy: Backend['sendProxy'], id = `b-${sendProxy}`): Backend =>
  ({ id, host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy, maxconn: 0, activeConnections: 0 });

export interface MadeSink {
  readonly sink: Sink;
  readonly stats: Stats;
  /** Log lines the sink wrote at create (warnings), parsed. */
  readonly logs: Record<string, unknown>[];
}

/** The sink as Tether builds it: options validated by its own schema, then create(). */
export async function makeSink(options: Record<string, unknown> = {}, backends: readonly Backend[] = []): Promise<MadeSink> {
  const stats = new Stats();
  const logs: Record<string, unknown>[] = [];
  const destination = { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) };
  const log = createLogger('info', destination as Parameters<typeof createLogger>[1]);
  const ctx = { log, stats: stats.scope('proxy_protocol'), now: Date.now, signal: new AbortController().signal, backends };
  return { sink: await proxyProtocol.create(ctx, validateOptions(proxyProtocol, options) as never), stats, logs };
}

/** Everything written to the upstream so far (the PassThrough is ended first). */
export async function written(upstream: PassThrough): Promise<Buffer> {
  upstream.end();
  const chunks: Buffer[] = [];
  for await (const chunk of upstream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A CONNECT, replayed by the pipeline after the header. */
export const CLIENT_BYTES = Buffer.from('100d00044d5154540402003c000163', 'hex');
