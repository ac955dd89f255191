import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The real Supervisor (node:cluster) in a child process of its own, over stand-in workers
 * (fixtures/worker.ts) that crash, fail to start, or stay: the restart budget and the start
 * failure, without a whole balancer.
 */

const PRIMARY = fileURLToPath(new URL('./fixtures/primary.ts', import.meta.url));

function run(mode: string, stopAfterStart = false): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [PRIMARY], { env: { ...process.env, MODE: mode }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stopAfterStart && stdout.includes('started')) process.kill(child.pid!, 'SIGTERM');
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(child.pid!, 'SIGKILL');
      reject(new Error(`primary did not exit within 25 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 25_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('Supervisor', () => {
  it('a worker that cannot start fails the start with its own message, without restarts', async () => {
    const r = await run('fail');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('start failed: cannot bind: boom\n');
    expect(r.stdout).not.toMatch(/starting another/);
  }, 30_000);

  it('replaces workers that die, and gives up after the crash budget with exit 1', async () => {
    const r = await run('crash');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^started /);
    expect(r.stdout.match(/worker exited unexpectedly: starting another/g)).toHaveLength(2);
    expect(r.stderr).toBe('fatal: workers crashed 3 times within 60 s; giving up\n');
  }, 30_000);

  it('stops every worker when asked: none is left', async () => {
    const r = await run('stay', true);
    expect(r.code).toBe(0);
    const pids = /started ([\d,]+)/.exec(r.stdout)![1]!.split(',').map(Number);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(alive(pid)).toBe(false);
  }, 30_000);
});
