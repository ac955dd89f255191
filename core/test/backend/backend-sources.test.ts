import { describe, expect, it } from 'vitest';
import { BackendPool, type BackendDefinition } from '../../src/backend/backend-pool.ts';
import { BackendSources } from '../../src/backend/backend-sources.ts';
import type { ProvidedBackend, Provider } from '../../src/plugin.ts';
import { Stats } from '../../src/stats.ts';
import { capturingLogger } from '../fixtures.ts';

const staticB: BackendDefinition = { id: 's1', host: '127.0.0.1', port: 1001, weight: 1, state: 'ready', sendProxy: 'none' };

/** A provider whose emissions the test drives. */
function scripted(label?: string): Provider & { emit: (set: readonly ProvidedBackend[]) => void } {
  let out: ((set: readonly ProvidedBackend[]) => void) | undefined;
  return {
    ...(label ? { label } : {}),
    start(emit) {
      out = emit;
    },
    emit(set) {
      out!(set);
    },
  };
}

function setup(startDown = false) {
  const pool = new BackendPool([staticB]);
  const stats = new Stats();
  const { log, lines } = capturingLogger('info');
  let syncs = 0;
  const sources = new BackendSources({ pool, log, stats, startDown: () => startDown, applied: () => syncs++ });
  sources.setStatic([staticB]);
  return { pool, stats, lines, sources, syncs: () => syncs };
}

const ids = (pool: BackendPool) => pool.all().map((b) => b.id);

describe('BackendSources', () => {
  it('merges the static list and a provider, each backend with its source; a change is one log line and counters', () => {
    const { pool, stats, lines, sources, syncs } = setup();
    const p = scripted('dns a.example:1883');
    sources.attach([{ name: 'dns', product: p }]);
    sources.apply();
    p.emit([{ name: 'a/10.0.0.1:1883', address: '10.0.0.1:1883', weight: 3, metadata: { record: 'A' } }]);
    expect(ids(pool)).toEqual(['s1', 'a/10.0.0.1:1883']);
    const added = pool.get('a/10.0.0.1:1883')!;
    expect(added.source).toBe('dns a.example:1883');
    expect(added.weight).toBe(3);
    expect(added.metadata).toEqual({ record: 'A' });
    expect(pool.get('s1')!.source).toBe('static');
    expect(stats.get('dns_backends_added')).toBe(1);
    expect(lines.filter((l) => l.msg === 'backends changed')).toHaveLength(1);
    expect(syncs()).toBe(1);
  });

  it('adds a discovered backend down when it must pass its health checks first', () => {
    const { pool, sources } = setup(true);
    const p = scripted();
    sources.attach([{ name: 'dns', product: p }]);
    p.emit([{ name: 'n1', address: '127.0.0.1:2001' }]);
    expect(pool.get('n1')!.state).toBe('down');
    expect(pool.available().map((b) => b.id)).toEqual(['s1']);
  });

  it('a removed backend takes no new clients, keeps its live connections, and comes back under its name', () => {
    const { pool, stats, sources } = setup();
    const p = scripted();
    sources.attach([{ name: 'dns', product: p }]);
    p.emit([{ name: 'n1', address: '127.0.0.1:2001' }, { name: 'n2', address: '127.0.0.1:2002' }]);
    const n2 = pool.get('n2')!;
    pool.connectionOpened(n2);
    p.emit([{ name: 'n1', address: '127.0.0.1:2001' }]);
    expect(pool.available().map((b) => b.id)).toEqual(['s1', 'n1']);
    expect(pool.get('n2')).toBe(n2);
    expect(n2.activeConnections).toBe(1);
    expect(stats.get('dns_backends_removed')).toBe(1);
    p.emit([{ name: 'n1', address: '127.0.0.1:2001' }, { name: 'n2', address: '127.0.0.1:2002' }]);
    expect(pool.get('n2')).toBe(n2);
    expect(pool.available().map((b) => b.id)).toEqual(['s1', 'n1', 'n2']);
  });

  it('the same backends in another order change nothing: same objects, no log line', () => {
    const { pool, lines, sources } = setup();
    const p = scripted();
    sources.attach([{ name: 'dns', product: p }]);
    p.emit([{ name: 'n1', address: '127.0.0.1:2001' }, { name: 'n2', address: '127.0.0.1:2002' }]);
    const before = pool.all().map((b) => pool.get(b.id));
    const logged = lines.length;
    p.emit([{ name: 'n2', address: '127.0.0.1:2002' }, { name: 'n1', address: '127.0.0.1:2001' }]);
    expect(new Set(pool.all())).toEqual(new Set(before));
    expect(lines.length).toBe(logged);
  });

  it('leaves out a bad entry and a name another source already gives, with a warning', () => {
    const { pool, lines, sources } = setup();
    const p = scripted();
    sources.attach([{ name: 'dns', product: p }]);
    p.emit([
      { name: 's1', address: '127.0.0.1:9' },
      { name: 'bad', address: 'nope' },
      { name: 'heavy', address: '127.0.0.1:3', weight: 100000 },
      { name: 'ok', address: '127.0.0.1:4' },
    ]);
    expect(ids(pool)).toEqual(['s1', 'ok']);
    expect(pool.get('s1')!.port).toBe(1001);
    expect(lines.filter((l) => l.msg === 'provider gave a bad backend; left out').map((l) => l.backend)).toEqual(['bad', 'heavy']);
    expect(lines.some((l) => l.msg === 'backend name already given by another source; this one is left out' && l.backend === 's1')).toBe(true);
  });

  it('a provider no longer attached (a reload dropped it) loses its backends and its late emissions change nothing', () => {
    const { pool, sources } = setup();
    const p = scripted();
    sources.attach([{ name: 'dns', product: p }]);
    p.emit([{ name: 'n1', address: '127.0.0.1:2001' }]);
    sources.attach([]);
    sources.apply();
    expect(ids(pool)).toEqual(['s1']);
    p.emit([{ name: 'n9', address: '127.0.0.1:2009' }]);
    expect(ids(pool)).toEqual(['s1']);
  });
});
