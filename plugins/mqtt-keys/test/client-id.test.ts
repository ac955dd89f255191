import { describe, expect, it } from 'vitest';
import { clientId } from '../src/client-id.ts';
import { conn, make } from './helpers.ts';

describe('client-id extractor', () => {
  it.each([
    ['a client id', { clientId: 'sensor-42' }, 'sensor-42'],
    ['a client id with spaces and unicode, unchanged', { clientId: ' ünï 🚀 ' }, ' ünï 🚀 '],
    ['the client id, not the username', { clientId: 'dev', username: 'alice' }, 'dev'],
    // MQTT lets a client send an empty id and have the broker assign one: nothing to stick on.
    ['nothing for an empty client id', { clientId: '' }, undefined],
    ['nothing for an empty client id, even with a username', { clientId: '', username: 'alice' }, undefined],
  ])('returns %s', async (_name, fields, expected) => {
    expect((await make(clientId)).extract(conn(fields))).toBe(expected);
  });
});
