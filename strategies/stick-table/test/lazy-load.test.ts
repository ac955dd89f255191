import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The Redis client library is loaded only for a Redis store: a balancer on the memory store (the
 * default) never loads it (it costs memory and start-up time in every worker). Checked in a fresh
 * Node process, where ioredis (CommonJS) would show in the module cache once imported.
 */

const INDEX = fileURLToPath(new URL('../src/index.ts', import.meta.url));

function loadsIoredis(store: Record<string, unknown>): boolean {
  const script = `
    import { createRequire } from 'node:module';
    const { default: stickTable } = await import(${JSON.stringify(INDEX)});
    const lifetime = new AbortController();
    const ctx = { log: { debug() {}, info() {}, warn() {} }, stats: { inc() {} }, now: Date.now, signal: lifetime.signal, backends: [] };
    const options = { size: 10, expire: '1m', keyLength: 128, mode: 'learn', store };
    const strategy = await stickTable.create(ctx, options);
    await strategy.close?.();
    lifetime.abort();
    const cache = createRequire(import.meta.url).cache;
    console.log(Object.keys(cache).some((k) => k.includes('/ioredis/')));
  `.replace('store };', `store: ${JSON.stringify(store)} };`);
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`the probe failed: ${r.stderr}`);
  return r.stdout.trim() === 'true';
}

describe('loading the Redis client', () => {
  it('does not happen for the memory store', () => {
    expect(loadsIoredis({ type: 'memory' })).toBe(false);
  });

  it('happens for a Redis store (even one that is not reachable)', () => {
    expect(loadsIoredis({ type: 'redis', url: 'redis://127.0.0.1:1/0', timeout: '50ms' })).toBe(true);
  });
});
