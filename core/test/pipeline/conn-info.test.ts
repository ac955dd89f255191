import { describe, expect, it } from 'vitest';
import { createConnInfo, factsOf, isPersistent } from '../../src/pipeline/conn-info.ts';
import { connect } from '../fixtures.ts';

// Whether a session outlives the connection decides if moving the client to another broker loses
// state; MQTT 3.1.x and 5 express it differently.
describe('isPersistent', () => {
  it.each([
    ['3.1 clean session off', 3, { clean: false }, true],
    ['3.1 clean session on', 3, { clean: true }, false],
    ['3.1.1 clean session off', 4, { clean: false }, true],
    ['3.1.1 clean session on', 4, { clean: true }, false],
    ['3.1.1 without the flag (mqtt-packet default)', 4, { clean: undefined }, false],
    // A 3.1.1 packet never carries properties; a stray one must not change the answer.
    ['3.1.1 clean on with a stray expiry property', 4, { clean: true, properties: { sessionExpiryInterval: 60 } }, false],
    ['5 clean start on, expiry 3600', 5, { clean: true, properties: { sessionExpiryInterval: 3600 } }, true],
    ['5 clean start off, expiry 3600', 5, { clean: false, properties: { sessionExpiryInterval: 3600 } }, true],
    // In MQTT 5 clean start only says whether an old session is resumed now.
    ['5 clean start off, no expiry', 5, { clean: false }, false],
    ['5 clean start off, expiry 0', 5, { clean: false, properties: { sessionExpiryInterval: 0 } }, false],
    ['5 clean start on, no properties', 5, { clean: true }, false],
    ['5 with other properties only', 5, { clean: false, properties: { receiveMaximum: 10 } }, false],
    ['5 expiry "never" (0xFFFFFFFF)', 5, { clean: true, properties: { sessionExpiryInterval: 0xffffffff } }, true],
  ] as const)('%s -> %s', (_name, version, fields, expected) => {
    expect(isPersistent(connect({ protocolVersion: version, ...fields }), version)).toBe(expected);
  });
});

describe('createConnInfo', () => {
  it('copies the socket endpoints and the CONNECT facts', () => {
    const packet = connect({ protocolVersion: 5, clientId: 'dev', clean: false, properties: { sessionExpiryInterval: 10 } });
    const conn = createConnInfo(7, factsOf({ remoteAddress: '::1', remotePort: 4000, remoteFamily: 'IPv6', localAddress: '::1', localPort: 1883 }, 'main'), packet);
    expect(conn).toMatchObject({
      id: 7, remoteAddress: '::1', remotePort: 4000, localAddress: '::1', localPort: 1883, family: 'IPv6',
      protocolVersion: 5, persistentSession: true, key: undefined, keySource: undefined,
    });
    expect(conn.connect).toBe(packet);
    expect(conn.attributes.size).toBe(0);
  });

  it('fills missing endpoints (a destroyed socket) with empty values and IPv4', () => {
    const conn = createConnInfo(1, factsOf({}, 'main'), connect());
    expect(conn).toMatchObject({ remoteAddress: '', remotePort: 0, localAddress: '', localPort: 0, family: 'IPv4' });
  });

  it('assumes 3.1.1 when the packet has no protocol version', () => {
    const conn = createConnInfo(1, factsOf({}, 'main'), connect({ protocolVersion: undefined, clean: false }));
    expect(conn.protocolVersion).toBe(4);
    expect(conn.persistentSession).toBe(true);
  });

  it('gives every connection its own attributes map', () => {
    const a = createConnInfo(1, factsOf({}, 'main'), connect());
    const b = createConnInfo(2, factsOf({}, 'main'), connect());
    a.attributes.set('x', 1);
    expect(b.attributes.has('x')).toBe(false);
  });
});
