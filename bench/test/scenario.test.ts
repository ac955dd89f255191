import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ScenarioError } from '../src/errors.ts';
import { loadScenario, parseScenario } from '../src/load-scenario.ts';
import { buildTimeline } from '../src/timeline.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/bench/', import.meta.url));

function problems(doc: unknown): string[] {
  try {
    parseScenario(doc);
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return [...(err as ScenarioError).problems];
  }
  throw new Error('expected the scenario to be rejected');
}

const base = { backends: ['a', 'b'], duration: '1h', step: '1m' };

describe('scenario files', () => {
  it.each(readdirSync(EXAMPLES).filter((f) => /\.(ya?ml|json)$/.test(f)))('the shipped %s loads', (file) => {
    const s = loadScenario(`${EXAMPLES}${file}`);
    expect(s.steps).toBeGreaterThan(0);
    expect(s.clients.count).toBeGreaterThan(0);
  });

  it('the seed scenario mirrors the seed: two brokers, 100k clients, a 100k table expiring after 30m', () => {
    const s = loadScenario(`${EXAMPLES}seed.yaml`);
    expect(s.backends.map((b) => b.name)).toEqual(['emqx1', 'emqx2']);
    expect(s.clients.count).toBe(100_000);
    expect(s.sessionExpiryMs).toBe(30 * 60_000);
    expect(s.chains![0]!.select[0]).toEqual({ use: 'stick-table', options: { size: 100_000, expire: '30m', keyLength: 32 }, when: 'always' });
    expect(s.churn.ratePerHour).toBeGreaterThan(0);
  });

  it('reads JSON too, with defaults filled in', () => {
    const s = loadScenario(`${FIXTURES}small.json`);
    expect(s).toMatchObject({
      name: 'small-json', seed: 3, durationMs: 30 * 60_000, stepMs: 60_000, steps: 30,
      backends: [{ name: 'a', weight: 1 }, { name: 'b', weight: 2 }],
      clients: { count: 500, distribution: 'uniform', persistent: 0.5, tenants: [] },
      sessionExpiryMs: 30 * 60_000,
      churn: { ratePerHour: 0.5, reconnectDelayMs: 5 * 60_000 },
      key: [{ use: 'client-id', options: {}, when: 'always' }],
    });
    expect(s.events).toEqual([{ type: 'drain', at: 10 * 60_000, backend: 'b', forMs: 5 * 60_000 }]);
  });

  it('command-line overrides win over the file and are validated the same way', () => {
    expect(loadScenario(`${FIXTURES}small.json`, { clients: 42, seed: 9 })).toMatchObject({ seed: 9, clients: { count: 42 } });
    expect(() => loadScenario(`${FIXTURES}small.json`, { clients: 0 })).toThrow(/--clients: must be a whole number from 1/);
  });

  it('reports every problem of a broken file at once, each with its place', () => {
    let error: ScenarioError | undefined;
    try {
      loadScenario(`${FIXTURES}broken.yaml`);
    } catch (err) {
      error = err as ScenarioError;
    }
    expect(error).toBeInstanceOf(ScenarioError);
    expect(error!.message).toContain('broken.yaml');
    const list = error!.problems.join('\n');
    expect(list).toMatch(/top level: unknown keys colour/);
    expect(list).toMatch(/duration: must be a whole, non-zero number of steps/);
    expect(list).toMatch(/backends\[1\]: "a" is listed twice/);
    expect(list).toMatch(/clients\.count: must be a whole number/);
    expect(list).toMatch(/clients\.distribution: must be uniform or zipf/);
    expect(list).toMatch(/churn\.rate: must be drops per client per hour/);
    expect(list).toMatch(/events\[0\]\.type: must be one of add, remove, restart, drain, rolling-restart, flap/);
    expect(list).toMatch(/events\[1\]\.downtime: must be longer than 0/);
    expect(error!.problems.length).toBeGreaterThanOrEqual(8);
  });

  it('a missing or unreadable file is a clear error', () => {
    expect(() => loadScenario(`${FIXTURES}nope.yaml`)).toThrow(/invalid scenario .*nope\.yaml: cannot be read/);
    expect(() => loadScenario(`${FIXTURES}../helpers.ts`)).toThrow(/use a \.yaml, \.yml or \.json file/);
  });
});

describe('scenario validation', () => {
  it('times must fall on the step grid', () => {
    expect(problems({ ...base, events: [{ at: '90s', type: 'remove', backend: 'b' }] })).toEqual([
      'events[0].at: 90000 ms is not a multiple of the step (60000 ms)',
    ]);
  });

  it('events must act on a backend that exists at that moment', () => {
    const list = problems({
      ...base,
      events: [
        { at: '5m', type: 'restart', backend: 'c', downtime: '1m' },
        { at: '10m', type: 'remove', backend: 'b' },
        { at: '15m', type: 'drain', backend: 'b' },
        { at: '20m', type: 'add', backend: 'a' },
      ],
    }).join('\n');
    expect(list).toMatch(/cannot down "c" at 5m: it is not a backend \(known: a, b\)/);
    expect(list).toMatch(/cannot drain "b" at 15m: it has been removed by then/);
    expect(list).toMatch(/"a" already exists; an added backend needs a new name/);
  });

  it('an event is measured until the next, so two at the same time are refused', () => {
    expect(problems({ ...base, events: [{ at: '5m', type: 'drain', backend: 'a' }, { at: '5m', type: 'drain', backend: 'b' }] })).toEqual([
      'events: two events at 300000 ms; give each its own time',
    ]);
  });

  it('events must happen before the end', () => {
    expect(problems({ ...base, events: [{ at: '1h', type: 'drain', backend: 'a' }] })[0]).toMatch(/not before the end/);
  });

  it('chains must look like a config select list', () => {
    const list = problems({ ...base, chains: [[], [{ use: 'stick-table', when: 'sometimes', extra: 1 }], { select: 'x' }] }).join('\n');
    expect(list).toMatch(/chains\[0\]: must be a non-empty list/);
    expect(list).toMatch(/chains\[1\]\[0\]\.when: must be one of always, persistent, clean/);
    expect(list).toMatch(/chains\[1\]\[0\]: unknown keys extra/);
    expect(list).toMatch(/chains\[2\]\.select: must be a non-empty list/);
  });

  it('a rolling restart must not take two backends down at once', () => {
    expect(problems({ ...base, events: [{ at: '5m', type: 'rolling-restart', downtime: '5m', interval: '2m' }] })[0]).toMatch(/interval: must be at least the downtime/);
  });

  it('refuses runs too large to finish', () => {
    expect(problems({ ...base, clients: { count: 10_000_000 }, churn: { rate: 100 } })[0]).toMatch(/churn: about 1000000000 reconnects/);
  });
});

describe('timeline', () => {
  it('expands composite events into backend state changes on the step grid', () => {
    const s = parseScenario({
      backends: ['a', 'b'],
      duration: '2h',
      step: '1m',
      events: [
        { at: '10m', type: 'add', backend: 'c', weight: 3 },
        { at: '20m', type: 'rolling-restart', downtime: '2m', interval: '5m' },
        { at: '1h', type: 'flap', backend: 'b', down: '1m', up: '2m', count: 2 },
        { at: '90m', type: 'remove', backend: 'a' },
      ],
    });
    const t = buildTimeline(s);
    expect(t.backends).toEqual([
      { name: 'a', weight: 1, initiallyPresent: true },
      { name: 'b', weight: 1, initiallyPresent: true },
      { name: 'c', weight: 3, initiallyPresent: false },
    ]);
    expect(t.actions.map((a) => `${a.step} ${a.kind} ${a.backend}`)).toEqual([
      '10 add c',
      // The rolling restart covers every backend present at its start, the added one included.
      '20 down a', '22 up a', '25 down b', '27 up b', '30 down c', '32 up c',
      '60 down b', '61 up b', '63 down b', '64 up b',
      '90 remove a',
    ]);
    expect(t.windows.map((w) => [w.label, w.fromStep, w.toStep])).toEqual([
      ['steady', 0, 10], ['add c', 10, 20], ['rolling-restart', 20, 60], ['flap b', 60, 90], ['remove a', 90, 120],
    ]);
  });

  it('has no steady window when the first event is at the start', () => {
    const t = buildTimeline(parseScenario({ ...base, events: [{ at: 0, type: 'drain', backend: 'a' }] }));
    expect(t.windows.map((w) => w.label)).toEqual(['drain a']);
  });
});
