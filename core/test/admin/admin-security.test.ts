import { request } from 'node:http';
import { builtinRegistry } from '@tether/cli';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminServer } from '../../src/admin/admin-server.ts';
import { AdminToken } from '../../src/admin/admin-token.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import { createTether } from '../../src/di/container.ts';
import { ConfigError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import type { TetherServer } from '../../src/tether-server.ts';
import { ScriptedBroker } from '../../../test/harness/ha-scripted-broker.ts';

/**
 * The admin API's guard, spoken to over real HTTP with node:http (which, unlike fetch, lets a test
 * send any Host header): DNS rebinding (Host), cross-origin changes (Origin), the JSON content type,
 * and the bearer token. A real balancer (createTether, as `tether start` builds it) with two
 * scripted brokers; every refusal is checked to have changed nothing.
 */

const TOKEN = 'a-test-token-0123456789abcdef';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Admin {
  readonly server: TetherServer;
  readonly port: number;
  readonly lines: string[];
}

async function admin(overrides: Record<string, unknown> = {}): Promise<Admin> {
  const brokers = await Promise.all([ScriptedBroker.start(), ScriptedBroker.start()]);
  cleanups.push(() => Promise.all(brokers.map((b) => b.close())));
  const config = loadConfig({
    env: {},
    overrides: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', backends: brokers.map((b, i) => `b${i + 1}=127.0.0.1:${b.port}`), ...overrides },
  });
  const lines: string[] = [];
  const log = createLogger('debug', { write: (line: string) => void lines.push(line) });
  const { server } = await createTether({ config, registry: builtinRegistry(), log });
  await server.start();
  cleanups.push(() => server.close());
  return { server, port: server.adminAddress!.port, lines };
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown>;
}

/** One HTTP request to the admin API; `host` replaces the Host header (null: none at all). */
function call(a: Admin, method: string, path: string, options: { host?: string | null; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.host !== null) headers.host = options.host ?? `127.0.0.1:${a.port}`;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: a.port, method, path, headers, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      // JSON from the API; the dashboard's pages are HTML, kept as { html }.
      const parse = (): Record<string, unknown> => (res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as Record<string, unknown>) : { html: text });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? parse() : {} }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };
const drain = (a: Admin, headers: Record<string, string>, extra: { host?: string | null; body?: string } = {}): Promise<Answer> =>
  call(a, 'POST', '/backends/b1/state', { headers, body: extra.body ?? '{"state":"drain"}', ...(extra.host !== undefined ? { host: extra.host } : {}) });

const refusals = (a: Admin): Record<string, unknown>[] =>
  a.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'admin request refused');

describe('Host: the admin API answers only to its own name (DNS rebinding)', () => {
  it('403 with a JSON reason for another name or port, or no Host; its address and localhost work', async () => {
    const a = await admin();
    for (const host of ['attacker.example', `attacker.example:${a.port}`, `127.0.0.1:${a.port + 1}`, `10.0.0.1:${a.port}`, `[::1]:${a.port}x`]) {
      const res = await call(a, 'GET', '/backends', { host });
      expect(res.status, host).toBe(403);
      expect(res.body.error).toBe(`the Host header ${JSON.stringify(host)} does not name this admin API; use its address (or list the name in admin.hosts)`);
    }
    // No Host at all: Node's HTTP server refuses an HTTP/1.1 request without one (400).
    expect((await call(a, 'GET', '/backends', { host: null })).status).toBe(400);
    // A rebound name changing something is refused the same way, before anything else is looked at.
    expect((await drain(a, JSON_TYPE, { host: `attacker.example:${a.port}` })).status).toBe(403);
    expect(a.server.pool.get('b1')?.state).toBe('ready');
    for (const host of [`127.0.0.1:${a.port}`, `localhost:${a.port}`, `LOCALHOST:${a.port}`]) {
      expect((await call(a, 'GET', '/backends', { host })).status, host).toBe(200);
    }
    // Each refusal is logged once, with what was wrong and from where.
    expect(refusals(a)).toHaveLength(6);
    expect(refusals(a)[0]).toMatchObject({ level: 40, method: 'GET', path: '/backends', status: 403, remote: '127.0.0.1' });
  });

  it('admin.hosts adds names (a DNS name of the machine)', async () => {
    const a = await admin({ 'admin.hosts': ['lb1.example.net'] });
    expect((await call(a, 'GET', '/stats', { host: `lb1.example.net:${a.port}` })).status).toBe(200);
    expect((await call(a, 'GET', '/stats', { host: `lb2.example.net:${a.port}` })).status).toBe(403);
  });
});

describe('Origin and Content-Type: a web page cannot change anything', () => {
  it('403 for a change from another origin (text/plain or JSON); the backend stays ready', async () => {
    const a = await admin();
    for (const origin of ['http://127.0.0.1:8080', 'http://attacker.example', `https://127.0.0.1:${a.port}`, 'null']) {
      for (const type of ['text/plain', 'application/json']) {
        const res = await drain(a, { origin, 'content-type': type });
        expect(res.status, `${origin} ${type}`).toBe(403);
        expect(res.body.error).toBe(`cross-origin request refused: Origin ${JSON.stringify(origin)} is not this admin API's own`);
      }
    }
    expect(a.server.pool.get('b1')?.state).toBe('ready');
    // Its own origin (the page a helper will serve on GET /) may change things.
    expect((await drain(a, { origin: `http://127.0.0.1:${a.port}`, ...JSON_TYPE })).status).toBe(200);
    expect(a.server.pool.get('b1')?.state).toBe('drain');
  });

  it('a GET from another origin is answered (reading changes nothing; without CORS headers a page cannot read it)', async () => {
    const a = await admin();
    const res = await call(a, 'GET', '/backends', { headers: { origin: 'http://attacker.example' } });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('415 for a change without Content-Type: application/json (curl -d drain); charset parameters are fine', async () => {
    const a = await admin();
    const types: Record<string, string>[] = [{}, { 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, { 'content-type': 'multipart/form-data; boundary=x' }];
    for (const headers of types) {
      const res = await drain(a, headers, { body: 'drain' });
      expect(res.status, JSON.stringify(headers)).toBe(415);
      expect(res.body.error).toMatch(/^a request that changes something must send a JSON body with Content-Type: application\/json/);
    }
    // DELETE and PUT too.
    expect((await call(a, 'DELETE', '/table/entries/k')).status).toBe(415);
    expect((await call(a, 'PUT', '/table/entries/k', { body: '{"backend":"b1"}' })).status).toBe(415);
    expect(a.server.pool.get('b1')?.state).toBe('ready');
    expect((await drain(a, { 'content-type': 'Application/JSON; charset=utf-8' })).status).toBe(200);
  });
});

describe('the token: Authorization: Bearer (or Basic with the token as password), compared in constant time, never logged', () => {
  it('401 with WWW-Authenticate when it is missing or wrong, for reads and changes; the right one passes', async () => {
    const a = await admin({ 'admin.token': TOKEN });
    const missing = await call(a, 'GET', '/backends');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="tether-admin"');
    expect(missing.body.error).toBe('this admin API needs a token: send Authorization: Bearer TOKEN (tether commands: --token-file FILE or TETHER_ADMIN_TOKEN)');
    for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer presented-but-wrong-0000', `Basic ${Buffer.from(`u:${TOKEN}x`).toString('base64')}`, `Basic ${Buffer.from(TOKEN).toString('base64')}`, TOKEN]) {
      const res = await call(a, 'GET', '/backends', { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="tether-admin"/);
    }
    expect((await call(a, 'GET', '/backends', { headers: { authorization: `Bearer ${TOKEN}x` } })).headers['www-authenticate']).toBe('Bearer realm="tether-admin", error="invalid_token"');
    expect((await drain(a, JSON_TYPE)).status).toBe(401);
    expect(a.server.pool.get('b1')?.state).toBe('ready');

    expect((await call(a, 'GET', '/backends', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await call(a, 'GET', '/table', { headers: { authorization: `bearer  ${TOKEN}` } })).status).toBe(200);
    expect((await drain(a, { ...JSON_TYPE, authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect(a.server.pool.get('b1')?.state).toBe('drain');
    // Neither the token nor a wrong one presented is in any log line.
    expect(a.lines.length).toBeGreaterThan(5);
    for (const line of a.lines) {
      expect(line).not.toContain(TOKEN.slice(0, 12));
      expect(line).not.toContain('presented-but-wrong');
    }
  });

  it('Basic with the token as the password (any user name) passes, as a browser sends it to the dashboard', async () => {
    const a = await admin({ 'admin.token': TOKEN });
    const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    expect((await call(a, 'GET', '/backends', { headers: { authorization: basic('operator', TOKEN) } })).status).toBe(200);
    expect((await call(a, 'GET', '/backends', { headers: { authorization: basic('', TOKEN) } })).status).toBe(200);
    expect((await drain(a, { ...JSON_TYPE, authorization: basic('ops:team', TOKEN) })).status).toBe(401);
    expect(a.server.pool.get('b1')?.state).toBe('ready');
    expect((await drain(a, { ...JSON_TYPE, authorization: basic('ops', TOKEN) })).status).toBe(200);
    expect(a.server.pool.get('b1')?.state).toBe('drain');
  });

  it('the dashboard page asks a browser for the token with a Basic challenge; the API routes keep Bearer', async () => {
    const a = await admin({ 'admin.token': TOKEN });
    for (const path of ['/', '/dashboard.js', '/dashboard.css', '/favicon.svg']) {
      const res = await call(a, 'GET', path);
      expect(res.status, path).toBe(401);
      expect(res.headers['www-authenticate'], path).toBe('Basic realm="tether-admin", charset="UTF-8"');
      expect(res.headers['content-type'], path).toBe('text/html; charset=utf-8');
      expect(res.headers['x-frame-options'], path).toBe('DENY');
    }
    expect((await call(a, 'GET', '/metrics')).headers['www-authenticate']).toBe('Bearer realm="tether-admin"');
    // The page itself, once the token is given, says nothing of it.
    const page = await call(a, 'GET', '/', { headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } });
    expect(page.status).toBe(200);
    expect(JSON.stringify(page)).not.toContain(TOKEN);
  });

  it('Host is checked before the token: a rebound page learns nothing, not even that a token is needed', async () => {
    const a = await admin({ 'admin.token': TOKEN });
    expect((await call(a, 'GET', '/backends', { host: `attacker.example:${a.port}` })).status).toBe(403);
  });
});

describe('binding off loopback', () => {
  it('without a token, the configuration is refused, naming the options', () => {
    for (const address of ['0.0.0.0:0', '[::]:0', '10.1.2.3:9999', 'admin.example.net:9999']) {
      let error: unknown;
      try {
        loadConfig({ env: {}, overrides: { admin: address } });
      } catch (err) {
        error = err;
      }
      expect(error, address).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/is not a loopback address and no admin token is set: anyone who can reach it could drain backends/);
      expect((error as Error).message).toContain('admin.token or admin.tokenFile (TETHER_ADMIN_TOKEN, TETHER_ADMIN_TOKEN_FILE)');
    }
    // With a token it is accepted (not bound here: tests stay on loopback).
    expect(loadConfig({ env: { TETHER_ADMIN_TOKEN: TOKEN }, overrides: { admin: '0.0.0.0:0' } }).admin?.listen).toEqual({ host: '0.0.0.0', port: 0 });
  });

  it('the admin server itself refuses before binding, whoever builds it', async () => {
    const server = new AdminServer({ log: createLogger('silent'), source: undefined as never });
    await expect(server.start({ host: '0.0.0.0', port: 0 })).rejects.toThrow(ConfigError);
    await server.close();
  });

  it('loopback names and addresses need no token', () => {
    for (const address of ['127.0.0.1:0', '127.0.0.2:0', '[::1]:0', 'localhost:0', ':0']) {
      expect(loadConfig({ env: {}, overrides: { admin: address } }).admin?.token, address).toBeUndefined();
    }
  });
});

describe('AdminToken', () => {
  it('shows [redacted] in JSON, String and inspect; matches only the exact value', async () => {
    const token = new AdminToken(TOKEN, 'admin.token');
    expect(JSON.stringify({ token })).toBe('{"token":"[redacted]"}');
    expect(String(token)).toBe('[redacted]');
    const { inspect } = await import('node:util');
    expect(inspect({ token })).not.toContain(TOKEN);
    expect(token.matches(TOKEN)).toBe(true);
    expect(token.matches(`${TOKEN} `)).toBe(false);
    expect(token.matches('')).toBe(false);
    expect(token.reveal()).toBe(TOKEN);
  });
});

describe('the logger', () => {
  it('redacts token and authorization fields wherever they appear', () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (line: string) => void lines.push(line) });
    log.info({ token: TOKEN, admin: { token: TOKEN }, authorization: `Bearer ${TOKEN}`, req: { headers: { authorization: `Bearer ${TOKEN}` } } }, 'x');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(TOKEN);
    expect(JSON.parse(lines[0]!)).toMatchObject({ token: '[redacted]', admin: { token: '[redacted]' }, authorization: '[redacted]', req: { headers: { authorization: '[redacted]' } } });
  });
});
