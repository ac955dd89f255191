import { describe, expect, it } from 'vitest';
import { username } from '../src/username.ts';
import { conn, make } from './helpers.ts';

describe('username extractor', () => {
  it.each([
    ['the username', { clientId: 'dev', username: 'alice' }, 'alice'],
    ['the username when the client id is empty', { clientId: '', username: 'alice' }, 'alice'],
    ['nothing without a username', { clientId: 'dev' }, undefined],
    ['nothing for an empty username', { clientId: 'dev', username: '' }, undefined],
  ])('returns %s', async (_name, fields, expected) => {
    expect((await make(username)).extract(conn(fields))).toBe(expected);
  });
});
