import { describe, expect, it } from 'vitest';
import { stickiness } from '../../src/pipeline/stickiness.ts';
import { connInfo as conn } from '../fixtures.ts';

describe('stickiness', () => {
  const persistent = conn({ clean: false });

  it('is a miss when a client resuming its session reaches its remembered backend and gets session present 0', () => {
    expect(stickiness(persistent, true, 0, false)).toBe('miss');
    expect(stickiness(persistent, true, 0, true)).toBe('hit');
  });

  it('judges nothing when the backend was not remembered, the client was refused, or it has no session to resume', () => {
    expect(stickiness(persistent, false, 0, false)).toBe('unchecked');
    expect(stickiness(persistent, true, 5, false)).toBe('unchecked');
    expect(stickiness(conn({ clean: true }), true, 0, false)).toBe('unchecked');
  });

  it('under MQTT 5 needs clean start 0 and a session expiry above 0', () => {
    expect(stickiness(conn({ protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } }), true, 0, false)).toBe('miss');
    // A persistent client that starts clean is rightly given no session.
    expect(stickiness(conn({ protocolVersion: 5, clean: true, properties: { sessionExpiryInterval: 3600 } }), true, 0, false)).toBe('unchecked');
    // Clean start 0 but no expiry: the broker drops the session at disconnect, nothing to miss.
    expect(stickiness(conn({ protocolVersion: 5, clean: false }), true, 0, false)).toBe('unchecked');
  });
});
