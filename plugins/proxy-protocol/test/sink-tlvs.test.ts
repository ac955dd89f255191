import type { TlsFacts } from '@tether/core';
import { testConn } from '@tether/core/testing';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { UNIQUE_ID_ATTRIBUTE } from '../src/plugin.ts';
import { proxyV2 } from '../src/proxy-header.ts';
import { inspectProxyHeader } from '../src/proxy-parser.ts';
import { decodeSslValue, type Tlv } from '../src/tlv.ts';
import { decode } from './decode.ts';
import { backend, CLIENT_BYTES, makeSink, written } from './sink-harness.ts';

// The sink's v2 TLVs, chosen by options, from the connection's TLS facts (as the tls transport
// leaves them). Each header is checked twice: proxy-protocol-js (independent, but blind to TLVs:
// it returns everything after the address block as data) for the addresses and for where the
// TLV area starts, and our own parser for the TLV contents. HAProxy reads them back for real in
// test/integration/proxy-tlv-haproxy.test.ts.

const TLS: TlsFacts = {
  protocol: 'TLSv1.2',
  cipher: 'ECDHE-RSA-AES128-GCM-SHA256',
  servername: 'mqtt.example.net',
  alpn: 'mqtt',
  peerCN: 'sensor-7',
  peerSAN: [],
  verified: true,
  verifyError: undefined,
};

const tlsConn = () => testConn({ facts: { remoteAddress: '192.0.2.10', remotePort: 50123, localAddress: '10.0.0.1', localPort: 8883, tls: TLS } });

interface Sent {
  readonly tlvs: readonly Tlv[];
  readonly headerLength: number;
  readonly raw: Buffer;
}

/** Attaches to `b`, replays the CONNECT, and reads back what the broker would receive. */
async function send(options: Record<string, unknown>, conn = tlsConn(), b = backend('v2')): Promise<Sent> {
  const { sink } = await makeSink(options, [b]);
  const upstream = new PassThrough();
  await sink.attach(conn, b, upstream);
  upstream.write(CLIENT_BYTES);
  const raw = await written(upstream);
  const parsed = inspectProxyHeader(raw, 65551);
  if (parsed.kind !== 'done') throw new Error(`not a header: ${JSON.stringify(parsed)}`);
  // Independent decoder: same addresses; everything after the address block is TLVs, then the CONNECT.
  const independent = decode(raw);
  expect(independent).toMatchObject({ version: 2, proto: 'TCP4', src: '192.0.2.10', dst: '10.0.0.1', srcPort: 50123, dstPort: 8883 });
  expect(independent.rest).toEqual(raw.subarray(28));
  expect(raw.subarray(parsed.length)).toEqual(CLIENT_BYTES);
  return { tlvs: parsed.header.tlvs, headerLength: parsed.length, raw };
}

const types = (s: Sent): number[] => s.tlvs.map((t) => t.type);
const text = (s: Sent, type: number): string | undefined => s.tlvs.find((t) => t.type === type)?.value.toString('utf8');

describe('proxy-protocol sink: TLVs', () => {
  it('by default sends none: the header is byte for byte the addresses-only one', async () => {
    const sent = await send({});
    expect(sent.tlvs).toEqual([]);
    expect(sent.raw.subarray(0, sent.headerLength)).toEqual(proxyV2({ sourceAddress: '192.0.2.10', sourcePort: 50123, destinationAddress: '10.0.0.1', destinationPort: 8883 }));
  });

  it('sends the ones asked for, with the TLS facts of the connection', async () => {
    const sent = await send({ tlvs: ['alpn', 'authority', 'ssl', 'unique-id'] });
    expect(types(sent)).toEqual([0x01, 0x02, 0x05, 0x20]);
    expect(text(sent, 0x01)).toBe('mqtt');
    expect(text(sent, 0x02)).toBe('mqtt.example.net');
    expect(text(sent, 0x05)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(decodeSslValue(sent.tlvs.find((t) => t.type === 0x20)!.value)).toEqual({
      client: 0x07, verify: 0, version: 'TLSv1.2', cn: 'sensor-7', cipher: 'ECDHE-RSA-AES128-GCM-SHA256', sigAlg: undefined, keyAlg: undefined,
    });
  });

  it('takes the list as a comma-separated string too (environment variables)', async () => {
    expect(types(await send({ tlvs: 'ssl, alpn' }))).toEqual([0x01, 0x20]);
  });

  it('crc32c: a checksum TLV first, which our parser verifies (a flipped bit would be refused)', async () => {
    const sent = await send({ tlvs: ['crc32c', 'authority'] });
    expect(types(sent)).toEqual([0x03, 0x02]);
    const damaged = Buffer.from(sent.raw);
    damaged[sent.headerLength - 1]! ^= 0x20; // last byte of the authority
    expect(inspectProxyHeader(damaged, 65551)).toMatchObject({ kind: 'reject', reason: 'invalid', detail: expect.stringMatching(/CRC32C/) });
  });

  it('per backend: an entry replaces `tlvs` for that backend only', async () => {
    const options = { tlvs: ['authority'], backends: { emqx1: ['ssl', 'alpn'], emqx2: [] } };
    const { sink } = await makeSink(options, [backend('v2', 'emqx1'), backend('v2', 'emqx2'), backend('v2', 'emqx3')]);
    const tlvTypes = async (id: string): Promise<number[]> => {
      const upstream = new PassThrough();
      await sink.attach(tlsConn(), backend('v2', id), upstream);
      const parsed = inspectProxyHeader(await written(upstream), 65551);
      return parsed.kind === 'done' ? parsed.header.tlvs.map((t) => t.type) : [];
    };
    expect(await tlvTypes('emqx1')).toEqual([0x01, 0x20]);
    expect(await tlvTypes('emqx2')).toEqual([]);
    expect(await tlvTypes('emqx3')).toEqual([0x02]);
  });

  it('a plain connection gets no TLS TLVs: a TLV is left out rather than faked', async () => {
    const plain = testConn({ facts: { remoteAddress: '192.0.2.10', remotePort: 50123, localAddress: '10.0.0.1', localPort: 8883 } });
    expect(types(await send({ tlvs: ['alpn', 'authority', 'ssl'] }, plain))).toEqual([]);
    expect(types(await send({ tlvs: ['alpn', 'authority', 'ssl', 'unique-id'] }, plain))).toEqual([0x05]);
  });

  it('unique-id: one per connection, the same on a retry to another backend, kept in the connection attributes', async () => {
    const { sink } = await makeSink({ tlvs: ['unique-id'] }, [backend('v2', 'a'), backend('v2', 'b')]);
    const idSent = async (conn: ReturnType<typeof tlsConn>, id: string): Promise<string> => {
      const upstream = new PassThrough();
      await sink.attach(conn, backend('v2', id), upstream);
      const parsed = inspectProxyHeader(await written(upstream), 65551);
      return parsed.kind === 'done' ? parsed.header.tlvs[0]!.value.toString('latin1') : '';
    };
    const first = tlsConn();
    const onA = await idSent(first, 'a');
    expect(await idSent(first, 'b')).toBe(onA);
    expect(first.attributes.get(UNIQUE_ID_ATTRIBUTE)).toBe(onA);
    expect(await idSent(tlsConn(), 'a')).not.toBe(onA);
  });

  it('unknown addresses: an UNSPEC PROXY header (the broker keeps its own view), TLVs still after it', async () => {
    const { sink } = await makeSink({ tlvs: ['authority'] }, [backend('v2')]);
    const upstream = new PassThrough();
    await sink.attach(testConn({ facts: { remoteAddress: '', localAddress: '', tls: TLS } }), backend('v2'), upstream);
    const raw = await written(upstream);
    expect(raw[12]).toBe(0x21); // version 2, PROXY (not LOCAL: this is a client's connection)
    expect(raw[13]).toBe(0x00); // UNSPEC
    expect(decode(raw)).toMatchObject({ version: 2, proto: 'UNKNOWN' });
    const parsed = inspectProxyHeader(raw, 65551);
    expect(parsed).toMatchObject({ kind: 'done', length: 16 + 3 + 'mqtt.example.net'.length, header: { command: 'proxy', addresses: undefined } });
  });

  it('a v1 backend never gets TLVs (v1 cannot carry them), and start says so', async () => {
    const { sink, logs } = await makeSink({ tlvs: ['ssl'] }, [backend('v1', 'old')]);
    expect(logs).toEqual([expect.objectContaining({ level: 40, backend: 'old', msg: expect.stringMatching(/PROXY v1, which cannot carry TLVs/) })]);
    const upstream = new PassThrough();
    await sink.attach(tlsConn(), backend('v1', 'old'), upstream);
    expect((await written(upstream)).toString('latin1')).toBe('PROXY TCP4 192.0.2.10 10.0.0.1 50123 8883\r\n');
  });

  it.each([
    [{ tlvs: ['alpn', 'sni'] }, /"sni" is not a TLV this sink sends \(alpn, authority, unique-id, ssl, crc32c\)/],
    [{ tlvs: 7 }, /tlvs must be a list of TLV names/],
    [{ backends: ['emqx1'] }, /must map backend names to TLV lists/],
    [{ backends: { emqx1: 'ssl,nope' } }, /backends.emqx1: "nope" is not a TLV/],
    [{ backends: { emqx1: ['nope'] } }, /backends.emqx1: "nope" is not a TLV/],
  ])('refuses the options %j', async (options, message) => {
    await expect(makeSink(options)).rejects.toThrow(message);
  });

  it('refuses per-backend TLVs for a backend that is not configured (a typo would silently do nothing)', async () => {
    await expect(makeSink({ backends: { emqx9: ['ssl'] } }, [backend('v2', 'emqx1')])).rejects.toThrow(/backends names no configured backend: emqx9 \(backends are: emqx1\)/);
  });
});
