import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AdminToken } from '../admin/admin-token.ts';
import { ConfigError, describe } from '../errors.ts';
import { formatHostPort, parseHostPort, type HostPort } from '../net/address.ts';
import { isLoopbackHost } from '../net/loopback.ts';
import { checkAdminToken, type RawConfig } from './schema.ts';

/** The admin API's options, checked: where it listens, the token it requires (if any), the extra Host names it answers to. */
export interface AdminConfig {
  readonly listen: HostPort;
  readonly token: AdminToken | undefined;
  readonly hosts: readonly string[];
}

/**
 * `admin` of the configuration: off when `admin.listen` is empty. The token comes from
 * `admin.token` (or TETHER_ADMIN_TOKEN) or from the first line of `admin.tokenFile`, never both.
 */
export function toAdminConfig(raw: RawConfig['admin'], baseDir: string): AdminConfig | undefined {
  if (!raw.listen) return undefined;
  if (raw.token && raw.tokenFile) {
    throw new ConfigError('admin.token (TETHER_ADMIN_TOKEN) and admin.tokenFile (TETHER_ADMIN_TOKEN_FILE) are both set: keep one');
  }
  const token = raw.token ? new AdminToken(raw.token, 'admin.token') : raw.tokenFile ? readTokenFile(resolve(baseDir, raw.tokenFile)) : undefined;
  const listen = parseHostPort(raw.listen, '127.0.0.1');
  requireTokenOffLoopback(listen, token);
  return { listen, token, hosts: raw.hosts };
}

function readTokenFile(file: string): AdminToken {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`admin.tokenFile ${file} cannot be read: ${describe(err)}`, { cause: err });
  }
  const token = text.split(/\r?\n/, 1)[0]!.trim();
  if (!token) throw new ConfigError(`admin.tokenFile ${file}: its first line is empty; put the token there`);
  try {
    checkAdminToken(token);
  } catch (err) {
    throw new ConfigError(`admin.tokenFile ${file}: the token ${describe(err)}`, { cause: err });
  }
  return new AdminToken(token, `admin.tokenFile ${file}`);
}

/**
 * The admin API changes what the balancer does: off this machine, only with a token. Checked when
 * the configuration is loaded (so `tether start` refuses before binding anything, and `tether
 * validate` says so too) and again by the admin server itself before it binds.
 */
export function requireTokenOffLoopback(listen: HostPort, token: AdminToken | undefined): void {
  if (token || isLoopbackHost(listen.host)) return;
  throw new ConfigError(
    `the admin API address ${formatHostPort(listen)} is not a loopback address and no admin token is set: anyone who can reach it could drain ` +
      'backends and rewrite the stick table. Set a token with admin.token or admin.tokenFile (TETHER_ADMIN_TOKEN, TETHER_ADMIN_TOKEN_FILE), ' +
      'or keep the admin API on 127.0.0.1 (--admin, TETHER_ADMIN, config key admin.listen)',
  );
}
