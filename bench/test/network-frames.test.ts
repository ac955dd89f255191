import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { FrameError, FrameReader } from '../src/network/mqtt-frames.ts';
import { connectPackets, qos0Batch } from '../src/network/loadgen/packets.ts';

/** The frame splitter the load generator and the responder share: packets cut anywhere must come out whole. */
describe('FrameReader', () => {
  const frames = (chunks: Buffer[]): { type: number; flags: number; body: string }[] => {
    const out: { type: number; flags: number; body: string }[] = [];
    const reader = new FrameReader((type, flags, body) => out.push({ type, flags, body: body.toString('hex') }));
    for (const c of chunks) reader.push(c);
    return out;
  };
  // A 200-byte payload needs a two-byte remaining length; PINGRESP has an empty body.
  const big = mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(200, 1), qos: 1, messageId: 7, retain: false, dup: false });
  const stream = Buffer.concat([Buffer.from([0x20, 0x02, 0x01, 0x00]), big, Buffer.from([0xd0, 0x00])]);

  it('splits coalesced packets and reassembles packets cut at every possible point', () => {
    const whole = frames([stream]);
    expect(whole.map((f) => f.type)).toEqual([2, 3, 13]);
    expect(whole[0]!.body).toBe('0100');
    expect(whole[1]!.flags).toBe(0x02);
    expect(whole[1]!.body.length / 2).toBe(big.length - 3);
    expect(whole[2]!.body).toBe('');
    for (let cut = 1; cut < stream.length; cut++) expect(frames([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(whole);
    expect(frames([...stream].map((b) => Buffer.from([b])))).toEqual(whole);
  });

  it('rejects a remaining length longer than four bytes', () => {
    expect(() => frames([Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])])).toThrow(FrameError);
  });
});

describe('pre-encoded packets', () => {
  it('gives each CONNECT its own client id, and a QoS 0 batch is that many PUBLISH packets', () => {
    const [first, , third] = connectPackets('r1t0c', 3, false, 0);
    const parsed: mqttPacket.Packet[] = [];
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p: mqttPacket.Packet) => parsed.push(p));
    parser.parse(Buffer.concat([first!, third!, qos0Batch('bench/x', 10, 5)]));
    expect(parsed.slice(0, 2)).toMatchObject([{ cmd: 'connect', clientId: 'r1t0c000000', clean: false, keepalive: 0 }, { cmd: 'connect', clientId: 'r1t0c000002' }]);
    expect(parsed.slice(2)).toHaveLength(5);
    expect(parsed.slice(2).every((p) => p.cmd === 'publish' && p.qos === 0 && p.topic === 'bench/x')).toBe(true);
  });
});
