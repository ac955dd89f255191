import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { CHROMIUM_FLAGS } from './chromium.ts';

/** Debian's chromium (a shell wrapper that execs the real binary with Debian's flags). */
const CHROMIUM = '/usr/bin/chromium';

/** What went wrong on a page, as the browser saw it: console errors, uncaught exceptions, failed requests. */
export interface PageTrouble {
  readonly errors: string[];
}

export interface HeadlessBrowser {
  readonly browser: Browser;
  /** A new tab whose console errors, uncaught exceptions and failed requests are collected. */
  page(): Promise<{ page: Page; trouble: PageTrouble }>;
  close(): Promise<void>;
}

/**
 * Headless Debian chromium driven over the DevTools protocol (puppeteer-core, which downloads no
 * browser), with a fresh profile and HOME removed on close. Closed by `close()`; if chromium does
 * not exit, its process group (puppeteer starts chromium detached, as a group leader) is killed by its PID. Callers check `hasBinary('chromium')` first.
 */
export async function launchBrowser(): Promise<HeadlessBrowser> {
  const home = mkdtempSync(join(tmpdir(), 'tether-browser-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // CHROMIUM_FLAGS without --headless: puppeteer adds its own headless flag.
    args: CHROMIUM_FLAGS.filter((f) => f !== '--headless'),
    userDataDir: join(home, 'profile'),
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache') },
    timeout: 30_000,
  });
  const pid = browser.process()?.pid;
  return {
    browser,
    async page() {
      const page = await browser.newPage();
      const trouble: PageTrouble = { errors: [] };
      page.on('console', (m) => {
        if (m.type() === 'error') trouble.errors.push(`console: ${m.text()} (${m.location().url ?? ''})`);
      });
      page.on('pageerror', (err) => trouble.errors.push(`exception: ${String(err)}`));
      page.on('requestfailed', (r) => trouble.errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
      return { page, trouble };
    },
    async close() {
      try {
        await Promise.race([browser.close(), new Promise((resolve) => setTimeout(resolve, 10_000))]);
      } finally {
        if (pid !== undefined) {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }
        rmSync(home, { recursive: true, force: true });
      }
    },
  };
}
