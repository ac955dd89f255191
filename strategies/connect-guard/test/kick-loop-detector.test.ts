import { describe, expect, it } from 'vitest';
import { KickLoopDetector, type KickLoopSettings } from '../src/kick-loop-detector.ts';

const SETTINGS: KickLoopSettings = { takeovers: 3, windowMs: 10_000, recentMs: 500, backoffMs: 2000, maxBackoffMs: 8000, size: 100 };

function detector(settings: Partial<KickLoopSettings> = {}) {
  const clock = { t: 1_000_000 };
  return { d: new KickLoopDetector({ ...SETTINGS, ...settings }, () => clock.t), clock };
}

/** Two devices with one id, as the broker drives them: each connect kicks the other one out. */
function loopOnce(d: KickLoopDetector, key: string, source: string): 'admit' | 'refuse' {
  const verdict = d.admit(key, source);
  if (verdict.kind === 'refuse') return 'refuse';
  d.opened(key); // the newcomer is spliced…
  d.closed(key); // …and the broker closes the other
  return 'admit';
}

describe('KickLoopDetector', () => {
  it('lets a client reconnect after its connection closed, as often as it likes', () => {
    const { d, clock } = detector();
    for (let i = 0; i < 20; i++) {
      expect(d.admit('dev', '10.0.0.1').kind).toBe('admit');
      d.opened('dev');
      clock.t += 100;
      d.closed('dev');
      clock.t += 600; // past `recent`: the previous connection is over
    }
  });

  it('lets one takeover through (a client back before its old connection timed out)', () => {
    const { d } = detector();
    d.opened('dev');
    expect(d.admit('dev', '10.0.0.2').kind).toBe('admit');
  });

  it('refuses the newest connection of a key once takeovers reach the limit within the window, and says so once', () => {
    const { d, clock } = detector();
    d.opened('twin');
    const verdicts = [];
    for (let i = 0; i < 4; i++) {
      verdicts.push(loopOnce(d, 'twin', i % 2 ? '10.0.0.1' : '10.0.0.2'));
      clock.t += 200;
    }
    expect(verdicts).toEqual(['admit', 'admit', 'refuse', 'refuse']);
    const [row] = d.loops();
    expect(row).toMatchObject({ key: 'twin', live: 1, takeovers: 3, backoffMs: 2000, sources: ['10.0.0.2', '10.0.0.1'] });
  });

  it('does not count takeovers spread wider than the window', () => {
    const { d, clock } = detector();
    d.opened('slow');
    for (let i = 0; i < 10; i++) {
      expect(loopOnce(d, 'slow', '10.0.0.1')).toBe('admit');
      clock.t += 5001; // three takeovers never fit in 10 s
    }
  });

  it('doubles the back-off for a loop that resumes on probation, up to the maximum, then forgets a quiet key', () => {
    const { d, clock } = detector();
    d.opened('twin');
    for (let i = 0; i < 3; i++) loopOnce(d, 'twin', '10.0.0.1');
    expect(d.loops()[0]!.backoffMs).toBe(2000);
    const backoffs = [];
    for (let i = 0; i < 4; i++) {
      clock.t += d.loops()[0]!.refusingForMs; // the refusal ends…
      expect(loopOnce(d, 'twin', '10.0.0.1')).toBe('refuse'); // …and the first takeover starts the next
      backoffs.push(d.loops()[0]!.backoffMs);
    }
    expect(backoffs).toEqual([4000, 8000, 8000, 8000]);
    // The loop stops (one device is switched off): a window after the back-off, the key is forgiven.
    clock.t += 8000 + 10_000;
    d.sweep();
    expect(d.loops()).toEqual([]);
    expect(d.admit('twin', '10.0.0.1').kind).toBe('admit');
  });

  it('forgets a loop when the operator says so, and a key with nothing to remember on sweep', () => {
    const { d, clock } = detector();
    d.opened('twin');
    for (let i = 0; i < 3; i++) loopOnce(d, 'twin', '10.0.0.1');
    expect(d.forgive('twin')).toBe(true);
    expect(d.forgive('twin')).toBe(false);
    expect(d.loops()).toEqual([]);
    d.closed('twin');
    clock.t += 1000;
    expect(d.sweep()).toBe(1);
    expect(d.tracked).toBe(0);
  });

  it('follows at most `size` keys, and is off with takeovers 0', () => {
    const small = detector({ size: 2 }).d;
    expect(['a', 'b', 'c'].map((k) => small.opened(k))).toEqual([true, true, false]);
    expect(small.tracked).toBe(2);
    const off = detector({ takeovers: 0 }).d;
    off.opened('twin');
    for (let i = 0; i < 10; i++) expect(loopOnce(off, 'twin', '10.0.0.1')).toBe('admit');
  });
});
