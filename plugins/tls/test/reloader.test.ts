import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Reloader, type ReloadTrigger } from '../src/reloader.ts';
import { within } from './helpers.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function setup(watch: boolean, debounceMs = 100): { dir: string; file: string; triggers: ReloadTrigger[]; next(): Promise<ReloadTrigger>; reloader: Reloader; lifetime: AbortController } {
  const dir = mkdtempSync(join(tmpdir(), 'tether-reloader-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'server.pem');
  writeFileSync(file, 'one');
  const triggers: ReloadTrigger[] = [];
  let waiter: ((t: ReloadTrigger) => void) | undefined;
  const lifetime = new AbortController();
  const reloader = new Reloader({
    files: [file],
    watch,
    debounceMs,
    signal: lifetime.signal,
    reload: (t) => {
      triggers.push(t);
      waiter?.(t);
    },
  });
  cleanups.push(() => reloader.close());
  return { dir, file, triggers, reloader, lifetime, next: () => within(new Promise<ReloadTrigger>((resolve) => (waiter = resolve)), 'a reload') };
}

describe('Reloader', () => {
  it('reloads when Tether reloads its configuration; never on SIGHUP itself (Tether owns it)', () => {
    const { triggers, reloader } = setup(false);
    process.emit('SIGHUP', 'SIGHUP');
    expect(triggers).toEqual([]);
    reloader.reloadNow();
    expect(triggers).toEqual(['reload']);
  });

  it('stops when its lifetime ends (retired by a reload, or Tether stopping)', () => {
    const { triggers, lifetime, reloader } = setup(true, 20);
    lifetime.abort();
    reloader.reloadNow();
    expect(triggers).toEqual([]);
  });

  it('reloads once for a burst of writes, after they stop', async () => {
    const { file, triggers, next } = setup(true, 200);
    const reloaded = next();
    for (let i = 0; i < 5; i++) writeFileSync(file, `version ${i}`);
    expect(await reloaded).toBe('file change');
    // Another reload only comes with another change: one more write, one more reload.
    const again = next();
    writeFileSync(file, 'version 6');
    await again;
    expect(triggers).toEqual(['file change', 'file change']);
  });

  it('notices a file replaced by a rename, as certificate tools do, and keeps noticing', async () => {
    const { dir, file, next } = setup(true);
    for (let round = 0; round < 2; round++) {
      const reloaded = next();
      const fresh = join(dir, `.new-${round}`);
      writeFileSync(fresh, `renamed ${round}`);
      renameSync(fresh, file);
      expect(await reloaded).toBe('file change');
    }
  });
});
