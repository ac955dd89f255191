import { readFile } from 'node:fs/promises';

/**
 * The dashboard of the admin listener (`GET /`): plain HTML, CSS and JavaScript files shipped in
 * this package (core/src/admin/dashboard/), served as they are: no build step, no CDN, nothing
 * fetched from anywhere but this admin API. The page reads the existing JSON routes (and
 * /metrics) and changes things only through them, so it passes the same guard as `curl`.
 */

interface Asset {
  readonly file: string;
  readonly contentType: string;
}

const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ['/', { file: 'index.html', contentType: 'text/html; charset=utf-8' }],
  ['/dashboard.js', { file: 'dashboard.js', contentType: 'text/javascript; charset=utf-8' }],
  ['/dashboard.css', { file: 'dashboard.css', contentType: 'text/css; charset=utf-8' }],
  ['/favicon.svg', { file: 'favicon.svg', contentType: 'image/svg+xml' }],
]);

/**
 * Sent with every file of the page. The policy allows scripts, styles and requests of this origin
 * only (no inline script, so an admin value shown on the page can never run as code), and no
 * framing: a page of another site cannot lay the dashboard's buttons under its own (clickjacking).
 */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/**
 * The answer to a browser that opened the page without the token: a Basic challenge makes the
 * browser ask for a user name and password itself (the token is the password, any user name
 * will do), and then send them with every request of the page, its data included. The page's
 * own code never sees the token.
 */
export const DASHBOARD_CHALLENGE = 'Basic realm="tether-admin", charset="UTF-8"';

export function isDashboardPath(path: string): boolean {
  return ASSETS.has(path);
}

export function dashboardRefusalPage(reason: string): string {
  const escaped = reason.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tether admin: token needed</title></head><body>
<h1>This admin API needs its token</h1>
<p>${escaped}</p>
<p>Reload the page and give the admin token as the <strong>password</strong> when the browser asks (any user name).</p>
</body></html>`;
}

const cache = new Map<string, Promise<string>>();

/** One file of the page, read from disk once per process; undefined for a path that is not one. */
export async function dashboardAsset(path: string): Promise<{ readonly contentType: string; readonly body: string } | undefined> {
  const asset = ASSETS.get(path);
  if (!asset) return undefined;
  let body = cache.get(asset.file);
  if (!body) {
    body = readFile(new URL(`./dashboard/${asset.file}`, import.meta.url), 'utf8');
    cache.set(asset.file, body);
    body.catch(() => cache.delete(asset.file));
  }
  return { contentType: asset.contentType, body: await body };
}
