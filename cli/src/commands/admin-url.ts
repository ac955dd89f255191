import { formatHostPort, loadConfig } from '@tether/core';
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
    throw new UsageError(`cannot reach the admin API at ${url} (${cause}); is tether running with --admin?`);
  }
  if (!res.ok) throw new UsageError(`admin API ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}
