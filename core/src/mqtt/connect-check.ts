import { isUtf8 } from 'node:buffer';

/**
 * The rules of a well-formed CONNECT that mqtt-packet (and HAProxy's mqtt_validate_message) let
 * through, checked on the frame's bytes before anything reaches a broker:
 * - `utf8`: a UTF-8 string (protocol name, client id, Will topic, user name, MQTT 5 string
 *   properties) that is not well-formed UTF-8 or holds U+0000 (MQTT 1.5.3, 5.0 §1.5.4);
 * - `trailing_bytes`: bytes inside the remaining length after the last field the flags announce;
 * - `not_shortest`: a variable byte integer (remaining length, property length or identifier)
 *   not in its shortest form (5.0 §1.5.5);
 * - `property`: an MQTT 5 property unknown in a CONNECT (or its Will), or repeated where the
 *   specification allows it once (everything but the User Property).
 * A walk over the bytes, allocation-free but for the views handed to `isUtf8`.
 */
export type ConnectRule = 'utf8' | 'trailing_bytes' | 'not_shortest' | 'property' | 'truncated';

export interface ConnectFault {
  readonly rule: ConnectRule;
  readonly detail: string;
}

/** Value layouts of MQTT 5 properties: fixed sizes are their byte counts. */
const Layout = { Byte: 1, TwoBytes: 2, FourBytes: 4, String: 5, Binary: 6, StringPair: 7 } as const;
type Layout = (typeof Layout)[keyof typeof Layout];

const USER_PROPERTY = 0x26;

/** CONNECT properties (5.0 §3.1.2.11). */
const CONNECT_PROPERTIES = new Map<number, Layout>([
  [0x11, Layout.FourBytes], // Session Expiry Interval
  [0x21, Layout.TwoBytes], // Receive Maximum
  [0x27, Layout.FourBytes], // Maximum Packet Size
  [0x22, Layout.TwoBytes], // Topic Alias Maximum
  [0x19, Layout.Byte], // Request Response Information
  [0x17, Layout.Byte], // Request Problem Information
  [USER_PROPERTY, Layout.StringPair],
  [0x15, Layout.String], // Authentication Method
  [0x16, Layout.Binary], // Authentication Data
]);

/** Will properties (5.0 §3.1.3.2). */
const WILL_PROPERTIES = new Map<number, Layout>([
  [0x18, Layout.FourBytes], // Will Delay Interval
  [0x01, Layout.Byte], // Payload Format Indicator
  [0x02, Layout.FourBytes], // Message Expiry Interval
  [0x03, Layout.String], // Content Type
  [0x08, Layout.String], // Response Topic
  [0x09, Layout.Binary], // Correlation Data
  [USER_PROPERTY, Layout.StringPair],
]);

const WILL_FLAG = 0x04;
const PASSWORD_FLAG = 0x40;
const USERNAME_FLAG = 0x80;

/** Thrown inside the walk, caught at its edge: keeps each step a one-liner. */
class Fault extends Error {
  readonly rule: ConnectRule;
  constructor(rule: ConnectRule, detail: string) {
    super(detail);
    this.rule = rule;
  }
}

/** A cursor over one CONNECT frame. Reused: the walk is synchronous. */
class Reader {
  frame: Buffer = Buffer.alloc(0);
  at = 0;
  end = 0;

  reset(frame: Buffer, at: number): void {
    this.frame = frame;
    this.at = at;
    this.end = frame.length;
  }

  need(n: number, what: string): void {
    if (this.at + n > this.end) throw new Fault('truncated', `${what} runs past the end of the packet`);
  }

  byte(what: string): number {
    this.need(1, what);
    return this.frame[this.at++]!;
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.at += n;
  }

  /** A variable byte integer, refused when longer than 4 bytes or not in its shortest form. */
  varint(what: string): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      const byte = this.byte(what);
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (i > 0 && byte === 0) throw new Fault('not_shortest', `${what} is not in its shortest form`);
        return value;
      }
      multiplier *= 128;
    }
    throw new Fault('truncated', `${what} is longer than 4 bytes`);
  }

  /** A two-byte length and that many bytes; returns where they start. */
  binary(what: string): number {
    this.need(2, what);
    const length = this.frame.readUInt16BE(this.at);
    this.at += 2;
    this.skip(length, what);
    return this.at - length;
  }

  string(what: string): void {
    const start = this.binary(what);
    const text = this.frame.subarray(start, this.at);
    if (!isUtf8(text)) throw new Fault('utf8', `${what} is not well-formed UTF-8`);
    if (text.indexOf(0) !== -1) throw new Fault('utf8', `${what} contains U+0000`);
  }

  properties(known: ReadonlyMap<number, Layout>, what: string): void {
    const length = this.varint(what);
    this.need(length, what);
    const outer = this.end;
    this.end = this.at + length;
    // Identifiers are below 64 today: two 32-bit masks record which were seen.
    let seenLow = 0;
    let seenHigh = 0;
    while (this.at < this.end) {
      const id = this.varint(what);
      const layout = known.get(id);
      if (layout === undefined) throw new Fault('property', `${what}: ${hex(id)} is not a property of this packet`);
      if (id !== USER_PROPERTY) {
        const bit = 1 << (id & 31);
        const seen = id < 32 ? seenLow : seenHigh;
        if ((seen & bit) !== 0) throw new Fault('property', `${what}: ${hex(id)} appears more than once`);
        if (id < 32) seenLow |= bit;
        else seenHigh |= bit;
      }
      // The label is a constant: a good CONNECT costs no string building.
      this.value(layout, what);
    }
    this.end = outer;
  }

  value(layout: Layout, what: string): void {
    switch (layout) {
      case Layout.Byte:
      case Layout.TwoBytes:
      case Layout.FourBytes:
        return this.skip(layout, what);
      case Layout.String:
      case Layout.StringPair:
        this.string(what);
        if (layout === Layout.StringPair) this.string(what);
        return;
      case Layout.Binary:
        this.binary(what);
        return;
    }
  }
}

const reader = new Reader();

/**
 * Checks one whole CONNECT frame (fixed header included; `bodyStart` is where its remaining length
 * ends). Returns the first rule it breaks, or undefined. Checks only what mqtt-packet does not:
 * the protocol name's and level's values, the reserved flag and the like are mqtt-packet's.
 */
export function checkConnect(frame: Buffer, bodyStart: number): ConnectFault | undefined {
  const r = reader;
  r.reset(frame, bodyStart);
  try {
    r.string('protocol name');
    const level = r.byte('protocol level') & 0x7f; // 0x80: a mosquitto bridge's flag
    const flags = r.byte('connect flags');
    r.skip(2, 'keep alive');
    const v5 = level === 5;
    if (v5) r.properties(CONNECT_PROPERTIES, 'properties');
    r.string('client identifier');
    if (flags & WILL_FLAG) {
      if (v5) r.properties(WILL_PROPERTIES, 'Will properties');
      r.string('Will topic');
      r.binary('Will payload');
    }
    if (flags & USERNAME_FLAG) r.string('user name');
    if (flags & PASSWORD_FLAG) r.binary('password');
    if (r.at !== frame.length) return { rule: 'trailing_bytes', detail: `${frame.length - r.at} bytes after the last field` };
    return undefined;
  } catch (err) {
    if (err instanceof Fault) return { rule: err.rule, detail: err.message };
    throw err;
  } finally {
    r.frame = EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);

function hex(id: number): string {
  return `property 0x${id.toString(16).padStart(2, '0')}`;
}
