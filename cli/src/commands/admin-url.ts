import { formatHostPort, loadConfig, TetherError } from '@tether/core';
import { configSources, UsageError, type FlagValues } from '../args.ts';

/** The admin API base URL: --admin (host:port or URL), else the config's admin address. */
export function adminUrl(values: FlagValues): string {
  const flag = values.admin;
  if (typeof flag === 'string' && flag) return /^https?:\/\//.test(flag) ? flag.replace(/\/$/, '') : `http://${flag}`;
  const config = loadConfig(configSources({ ...values, admin: undefined }));
  if (!config.admin) throw new UsageError('no admin address: pass --admin HOST:PORT, or -c FILE with an "admin" address (TETHER_ADMIN)');
  const host = config.admin.host === '0.0.0.0' ? '127.0.0.1' : config.admin.host === '::' ? '::1' : config.admin.host;
  return `http://${formatHostPort({ host, port: config.admin.port })}`;
}

export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new TetherError('TETHER_ERR_ADMIN', `cannot reach the admin API at ${url} (${cause}); is tether running with --admin?`);
  }
  if (!res.ok) {
    const text = await res.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      // not JSON: show it as it is
    }
    throw new TetherError('TETHER_ERR_ADMIN', `admin API ${url} answered ${res.status}: ${message}`);
  }
  return (await res.json()) as T;
}
