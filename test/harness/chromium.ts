import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Headless, and quiet on the network: no QUIC, no update, sync or other background requests. */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-extensions', '--mute-audio',
];

export interface ChromiumRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/**
 * One run of Debian's `chromium` with a fresh profile and HOME (removed afterwards), `args` after
 * CHROMIUM_FLAGS. Chromium runs in a process group of its own; if it is still running after
 * `limitMs`, that group (its id is Chromium's PID) is killed, and any process of it still there
 * after Chromium exited is killed too. Callers check `hasBinary('chromium')` first. `stop`, when
 * aborted, ends a run that has no end of its own (a page kept open until the test is done with it).
 */
export async function runChromium(args: readonly string[], limitMs = 60_000, stop?: AbortSignal): Promise<ChromiumRun> {
  const home = mkdtempSync(join(tmpdir(), 'tether-chromium-'));
  try {
    const child = spawn('chromium', [...CHROMIUM_FLAGS, `--user-data-dir=${join(home, 'profile')}`, ...args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache') },
    });
    const pid = child.pid!;
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const killGroup = (): void => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // The group is gone already.
      }
    };
    const limit = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, limitMs);
    stop?.addEventListener('abort', killGroup, { once: true });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c) => resolve(c));
    });
    clearTimeout(limit);
    stop?.removeEventListener('abort', killGroup);
    killGroup();
    return { code, stdout, stderr, timedOut };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
