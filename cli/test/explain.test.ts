import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deadLoopbackPort, FIXTURES, killAll, lines, runTether, startTether, type RunningTether } from './helpers/cli.ts';
import { closeAllClients, connectClient, disconnect } from './helpers/mqtt.ts';

/** `tether explain --hex HEX`: what Tether would do with one first packet. */

const T = 30_000;

interface Explained {
  valid: boolean;
  error?: string;
  bytes: number;
  protocolName?: string;
  protocolVersion?: number;
  clientId?: string;
  username?: string;
  cleanSession?: boolean;
  keepalive?: number;
  sessionExpiryInterval?: number;
  persistentSession?: boolean;
  key?: string | null;
  keySource?: string | null;
  backend?: string | null;
  strategy?: string | null;
  websocket?: { path: string; protocol: string; mode?: string };
}

const hexOf = (packet: Record<string, unknown>): string => mqttPacket.generate(packet as unknown as mqttPacket.Packet).toString('hex');

const CONNECT_311 = hexOf({
  cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'device-42', keepalive: 60,
  username: 'alice', password: Buffer.from('s3cret-pass'),
});
const CONNECT_5 = hexOf({
  cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: false, clientId: 'v5-device', keepalive: 30,
  properties: { sessionExpiryInterval: 3600 },
});
const CONNECT_31 = hexOf({ cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clean: false, clientId: 'old-device', keepalive: 10 });
const BACKENDS = ['--backend', 'a=127.0.0.1:1884', '--backend', 'b=127.0.0.1:1885'];

async function explainJson(args: string[]): Promise<{ code: number | null; result: Explained; stderr: string }> {
  const r = await runTether(['explain', '--json', ...args]);
  expect(lines(r.stdout), `stdout of tether explain ${args.join(' ')}; stderr: ${r.stderr}`).toHaveLength(1);
  return { code: r.code, result: JSON.parse(r.stdout) as Explained, stderr: r.stderr };
}

// runTether bounds and kills its own process; this is the safety net for anything left.
afterAll(() => killAll());

describe('tether explain: valid CONNECT packets', () => {
  it('MQTT 3.1.1: the fields, the key and one of the --backend names; exit 0', async () => {
    const { code, result, stderr } = await explainJson(['--hex', CONNECT_311, ...BACKENDS]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(result).toMatchObject({
      valid: true, bytes: CONNECT_311.length / 2, protocolName: 'MQTT', protocolVersion: 4, clientId: 'device-42', username: 'alice',
      cleanSession: true, keepalive: 60, persistentSession: false, key: 'device-42', keySource: 'client-id', strategy: 'least-connections',
    });
    expect(['a', 'b']).toContain(result.backend);
    expect(result.error).toBeUndefined();
  }, T);

  it('never shows the password', async () => {
    const json = await runTether(['explain', '--json', '--hex', CONNECT_311, ...BACKENDS]);
    const text = await runTether(['explain', '--hex', CONNECT_311, ...BACKENDS]);
    expect(json.stdout).toContain('device-42');
    expect(text.stdout).toContain('device-42');
    expect(json.stdout + text.stdout).not.toContain('s3cret-pass');
  }, T);

  it('the text form', async () => {
    const r = await runTether(['explain', '--hex', CONNECT_311, ...BACKENDS]);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toBe(`valid CONNECT, ${CONNECT_311.length / 2} bytes`);
    expect(out).toContain('  protocol       MQTT level 4 (MQTT 3.1.1)');
    expect(out).toContain('  client id      "device-42"');
    expect(out).toContain('  username       "alice"');
    expect(out).toContain('  key            "device-42" (from client-id)');
    expect(out).toContainEqual(expect.stringMatching(/^ {2}backend {8}[ab] \(chosen by least-connections\)$/));
  }, T);

  it('MQTT 5 with a session expiry: a persistent session', async () => {
    const { code, result } = await explainJson(['--hex', CONNECT_5, ...BACKENDS]);
    expect(code).toBe(0);
    expect(result).toMatchObject({
      valid: true, protocolVersion: 5, clientId: 'v5-device', cleanSession: false, keepalive: 30, sessionExpiryInterval: 3600,
      persistentSession: true, key: 'v5-device', keySource: 'client-id',
    });
    expect(result.username).toBeUndefined();
    expect(['a', 'b']).toContain(result.backend);
    const text = await runTether(['explain', '--hex', CONNECT_5, ...BACKENDS]);
    expect(text.stdout).toContain('  protocol       MQTT level 5 (MQTT 5.0)');
    expect(text.stdout).toContain('  session expiry 3600s');
    expect(text.stdout).toContain('  session        persistent (moving it loses the session)');
  }, T);

  it('MQTT 3.1 (MQIsdp)', async () => {
    const { code, result } = await explainJson(['--hex', CONNECT_31, ...BACKENDS]);
    expect(code).toBe(0);
    expect(result).toMatchObject({ valid: true, protocolName: 'MQIsdp', protocolVersion: 3, clientId: 'old-device', persistentSession: true });
  }, T);

  it('accepts hex with spaces and upper case, as copied from a capture', async () => {
    const spaced = CONNECT_311.toUpperCase().replace(/(..)/g, '$1 ');
    const { code, result } = await explainJson(['--hex', spaced, ...BACKENDS]);
    expect(code).toBe(0);
    expect(result).toMatchObject({ valid: true, clientId: 'device-42' });
  }, T);

  it('--key username,client-id takes the user name, and falls back to the client id without one', async () => {
    const withUser = await explainJson(['--hex', CONNECT_311, '--key', 'username,client-id', ...BACKENDS]);
    expect(withUser.code).toBe(0);
    expect(withUser.result).toMatchObject({ key: 'alice', keySource: 'username' });
    const withoutUser = await explainJson(['--hex', CONNECT_5, '--key', 'username,client-id', ...BACKENDS]);
    expect(withoutUser.result).toMatchObject({ key: 'v5-device', keySource: 'client-id' });
  }, T);

  it('an empty client id is keyless: still valid, placed by least-connections', async () => {
    const hex = hexOf({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: '', keepalive: 0 });
    const { code, result } = await explainJson(['--hex', hex, ...BACKENDS]);
    expect(code).toBe(0);
    expect(result).toMatchObject({ valid: true, clientId: '', key: null, strategy: 'least-connections' });
    expect(['a', 'b']).toContain(result.backend);
  }, T);

  it('uses the strategies of a config file, including a plugin it loads', async () => {
    // with-plugin.yaml: select [stick-table, e2e:last-backend (prefer: b)] over backends a, b, c.
    const { code, result } = await explainJson(['--hex', CONNECT_311, '-c', join(FIXTURES, 'with-plugin.yaml')]);
    expect(code).toBe(0);
    expect(result).toMatchObject({ valid: true, backend: 'b', strategy: 'e2e:last-backend' });
  }, T);

  it('with no backend configured: valid, but no backend', async () => {
    const { code, result } = await explainJson(['--hex', CONNECT_311]);
    expect(code).toBe(0);
    expect(result).toMatchObject({ valid: true, key: 'device-42', backend: null, strategy: null });
  }, T);
});

describe('tether explain: not a CONNECT', () => {
  const http = Buffer.from('GET / HTTP/1.1\r\nHost: tether\r\n\r\n').toString('hex');

  it.each([
    ['HTTP bytes', http, /HTTP/],
    ['a truncated CONNECT', CONNECT_311.slice(0, 30), /incomplete packet: 15 bytes/],
    ['a PUBLISH first', hexOf({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }), /CONNECT/],
    ['an unknown protocol level', CONNECT_311.replace('00044d51545404', '00044d51545409'), /.+/],
    ['odd-length hex', `${CONNECT_311}0`, /hexadecimal/],
    ['not hex at all', 'zz', /hexadecimal/],
  ])('%s: valid false with the reason, exit 1', async (_name, hex, reason) => {
    const { code, result } = await explainJson(['--hex', hex, ...BACKENDS]);
    expect(code).toBe(1);
    expect(result.valid).toBe(false);
    expect(result.error).toMatch(reason);
    expect(result.backend).toBeUndefined();
  }, T);

  it('the text form says invalid and why', async () => {
    const r = await runTether(['explain', '--hex', http]);
    expect(r.code).toBe(1);
    expect(lines(r.stdout)).toEqual([expect.stringMatching(/^invalid: .*HTTP/)]);
  }, T);

  it('without --hex: a usage error, exit 2', async () => {
    const r = await runTether(['explain']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual(['tether: explain needs --hex HEX (the first packet a client sends, or a WebSocket opening: request and frames, as hex)']);
    expect(r.stdout).toBe('');
  }, T);
});

describe('tether explain --admin: asks a running balancer, against its live stick table', () => {
  let tether: RunningTether;

  beforeAll(async () => {
    tether = await startTether(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  }, T);
  afterEach(() => closeAllClients());
  afterAll(() => killAll());

  it('a client the table holds is sent back to its backend by stick-table; a new one by least-connections', async () => {
    const { client } = await connectClient(tether.url, { clientId: 'known-device', protocolVersion: 4 });
    const table = await runTether(['table', 'show', '--admin', tether.admin!, '--json']);
    const entries = (JSON.parse(table.stdout) as { tables: { entries: { key: string; backend: string }[] }[] }).tables[0]!.entries;
    const home = entries.find((e) => e.key === 'known-device')!.backend;
    expect(home).toMatch(/^embedded[12]$/);
    await disconnect(client);

    const hex = hexOf({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'known-device', keepalive: 60 });
    const live = await explainJson(['--hex', hex, '--admin', tether.admin!]);
    expect(live.code).toBe(0);
    expect(live.result).toMatchObject({ valid: true, key: 'known-device', backend: home, strategy: 'stick-table' });

    // Explain asks; it does not connect: the table is unchanged.
    const after = await runTether(['table', 'show', '--admin', tether.admin!, '--json']);
    const entriesAfter = (JSON.parse(after.stdout) as { tables: { entries: { key: string }[] }[] }).tables[0]!.entries;
    expect(entriesAfter.map((e) => e.key)).toEqual(['known-device']);

    const unknown = hexOf({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'never-seen', keepalive: 60 });
    const fresh = await explainJson(['--hex', unknown, '--admin', tether.admin!]);
    expect(fresh.result).toMatchObject({ valid: true, key: 'never-seen', strategy: 'least-connections' });
    expect(fresh.result.backend).toMatch(/^embedded[12]$/);
  }, T);

  it('an invalid packet: valid false from the balancer too, exit 1', async () => {
    const { code, result } = await explainJson(['--hex', CONNECT_311.slice(0, 20), '--admin', tether.admin!]);
    expect(code).toBe(1);
    expect(result).toMatchObject({ valid: false });
    expect(result.error).toMatch(/incomplete/);
  }, T);

  it('an admin address where nothing listens: one line saying so, non-zero exit', async () => {
    const dead = `127.0.0.1:${await deadLoopbackPort()}`;
    const r = await runTether(['explain', '--hex', CONNECT_311, '--admin', dead]);
    expect(r.code).not.toBe(0);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^tether: cannot reach the admin API at http://${dead.replace(/\./g, '\\.')}/explain \\(ECONNREFUSED\\)`))]);
  }, T);
});

/** A WebSocket opening as a browser sends it: the Upgrade request, then the CONNECT in a masked binary frame. */
function openingHex(connectHex: string, path = '/mqtt', protocol = 'mqtt'): string {
  const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`;
  const payload = Buffer.from(connectHex, 'hex');
  const mask = Buffer.from([1, 2, 3, 4]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
  return Buffer.concat([Buffer.from(request, 'latin1'), Buffer.from([0x82, 0x80 | payload.length]), mask, body]).toString('hex');
}

describe('tether explain: WebSocket openings', () => {
  it('reads the CONNECT inside the frames: fields, key, backend and bridge mode', async () => {
    const { code, result } = await explainJson(['--hex', openingHex(CONNECT_311), ...BACKENDS]);
    expect(code).toBe(0);
    expect(result).toMatchObject({ valid: true, clientId: 'device-42', key: 'device-42', websocket: { path: '/mqtt', protocol: 'mqtt', mode: 'bridge' } });
    expect(['a', 'b']).toContain(result.backend);
    const text = await runTether(['explain', '--hex', openingHex(CONNECT_311), ...BACKENDS]);
    expect(lines(text.stdout)[0]).toMatch(/^valid CONNECT in a WebSocket opening, \d+ bytes$/);
    expect(lines(text.stdout)).toContain('  websocket      /mqtt, subprotocol mqtt, bridged to the broker\'s MQTT port');
  }, T);

  it('a refused opening says why, exit 1', async () => {
    const { code, result } = await explainJson(['--hex', openingHex(CONNECT_311, '/mqtt', 'wamp'), ...BACKENDS]);
    expect(code).toBe(1);
    expect(result.valid).toBe(false);
    expect(result.error).toMatch(/ws_bad_subprotocol/);
  }, T);
});
