import { readFileSync } from 'node:fs';
import { checkAdminToken, describeError, formatHostPort, loadConfig, TetherError } from '@tether/core';
import { configSources, UsageError, type FlagValues } from '../args.ts';

/** The flags of every command that talks to a running balancer's admin API. */
export const ADMIN_FLAGS = {
  admin: { type: 'string' },
  config: { type: 'string', short: 'c' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/**
 * The admin API of a running balancer, as the CLI reaches it. The address: --admin (host:port or
 * URL), else `admin.listen` of -c FILE (or TETHER_ADMIN). The token: the first line of
 * --token-file, else TETHER_ADMIN_TOKEN, else the token of -c FILE (admin.token or
 * admin.tokenFile). Requests that change something are sent as JSON, as the API requires.
 */
export class AdminClient {
  readonly url: string;
  readonly #token: string | undefined;

  constructor(url: string, token: string | undefined) {
    this.url = url;
    this.#token = token;
  }

  static from(values: FlagValues): AdminClient {
    const flag = typeof values.admin === 'string' && values.admin ? values.admin : undefined;
    const fromFile = typeof values['token-file'] === 'string' ? readTokenFile(values['token-file']) : undefined;
    const fromEnv = process.env.TETHER_ADMIN_TOKEN || undefined;
    // The configuration is read only when it is needed: for the address, or for the token of -c FILE.
    const needConfig = !flag || (fromFile === undefined && fromEnv === undefined && (typeof values.config === 'string' || !!process.env.TETHER_ADMIN_TOKEN_FILE));
    const config = needConfig ? loadConfig(configSources({ config: values.config })) : undefined;
    let url: string;
    if (flag) {
      url = /^https?:\/\//.test(flag) ? flag.replace(/\/$/, '') : `http://${flag}`;
    } else {
      if (!config?.admin) throw new UsageError('no admin address: pass --admin HOST:PORT, or -c FILE with an "admin" address (TETHER_ADMIN)');
      const { host, port } = config.admin.listen;
      // A wildcard bind is reached on loopback (the admin API answers to any of its addresses).
      url = `http://${formatHostPort({ host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port })}`;
    }
    return new AdminClient(url, fromFile ?? fromEnv ?? config?.admin?.token?.reveal());
  }

  get<T>(path: string): Promise<T> {
    return this.#request<T>('GET', path);
  }

  /** A request that changes something: a JSON body (`{}` when there is none). */
  send<T>(method: 'POST' | 'PUT' | 'DELETE', path: string, body: Record<string, unknown> = {}): Promise<T> {
    return this.#request<T>(method, path, JSON.stringify(body));
  }

  async #request<T>(method: string, path: string, body?: string): Promise<T> {
    const url = `${this.url}${path}`;
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new TetherError('TETHER_ERR_ADMIN', `cannot reach the admin API at ${url} (${cause}); is tether running with --admin?`);
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        // not JSON: show it as it is
      }
      throw new AdminApiError(res.status, `admin API ${url} answered ${res.status}: ${message}`, text);
    }
    return JSON.parse(text) as T;
  }
}

/** The API answered with an error status; `body` is its JSON text. */
export class AdminApiError extends TetherError {
  readonly status: number;
  readonly body: string;
  constructor(status: number, message: string, body: string) {
    super('TETHER_ERR_ADMIN', message);
    this.status = status;
    this.body = body;
  }
}

function readTokenFile(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').split(/\r?\n/, 1)[0]!.trim();
  } catch (err) {
    throw new TetherError('TETHER_ERR_ADMIN', `--token-file ${file} cannot be read: ${describeError(err)}`);
  }
  if (!token) throw new TetherError('TETHER_ERR_ADMIN', `--token-file ${file}: its first line is empty; put the admin token there`);
  try {
    checkAdminToken(token);
  } catch (err) {
    throw new TetherError('TETHER_ERR_ADMIN', `--token-file ${file}: the token ${describeError(err)}`);
  }
  return token;
}
