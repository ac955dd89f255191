import { readFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { parseDuration } from '@tether/core';
import YAML from 'yaml';
import { namedChain, parseEntries } from './chains.ts';
import { ScenarioError } from './errors.ts';
import {
  EVENT_TYPES, type ChainSpec, type ClientsSpec, type Distribution, type EventType, type Scenario, type ScenarioBackend, type ScenarioEvent,
} from './scenario.ts';
import { checkTimeline } from './timeline.ts';

/** Upper bounds that keep a run finite on a laptop; a scenario beyond them is a typo more often than not. */
export const LIMITS = { clients: 10_000_000, steps: 100_000, flapCount: 10_000, reconnects: 50_000_000 } as const;

const TOP_KEYS = ['name', 'description', 'seed', 'duration', 'step', 'backends', 'clients', 'sessionExpiry', 'churn', 'events', 'chains', 'key', 'plugins'];

/** What the command line may override (`--clients`, `--seed`). */
export interface ScenarioOverrides {
  readonly clients?: number;
  readonly seed?: number;
}

/** Reads a YAML (.yaml, .yml) or JSON (.json) scenario file and validates it. */
export function loadScenario(file: string, overrides: ScenarioOverrides = {}): Scenario {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ScenarioError(file, [`cannot be read: ${(err as Error).message}`]);
  }
  let doc: unknown;
  try {
    if (extname(path) === '.json') doc = JSON.parse(text);
    else if (['.yaml', '.yml'].includes(extname(path))) doc = YAML.parse(text);
    else throw new Error('use a .yaml, .yml or .json file');
  } catch (err) {
    throw new ScenarioError(file, [`cannot be parsed: ${(err as Error).message.split('\n')[0]!}`]);
  }
  return parseScenario(doc, { source: file, baseDir: dirname(path), defaultName: basename(path, extname(path)), overrides });
}

export interface ParseOptions {
  /** Shown in errors and the report. */
  readonly source?: string;
  /** Relative plugin paths resolve against it (the scenario file's directory). */
  readonly baseDir?: string;
  readonly defaultName?: string;
  readonly overrides?: ScenarioOverrides;
}

/**
 * Validates a parsed scenario document. Every problem is collected (with its path, e.g.
 * `events[2].backend`) and reported together in one ScenarioError.
 */
export function parseScenario(doc: unknown, options: ParseOptions = {}): Scenario {
  const source = options.source ?? '(inline)';
  const baseDir = options.baseDir ?? process.cwd();
  const problems: string[] = [];
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ScenarioError(source, ['the top level must be a mapping (name, backends, clients, events, ...)']);
  const raw = doc as Record<string, unknown>;
  unknownKeys(raw, TOP_KEYS, '', problems);

  for (const key of ['name', 'description'] as const) {
    if (raw[key] !== undefined && typeof raw[key] !== 'string') problems.push(`${key}: must be text`);
  }
  const durationMs = duration(raw.duration, 'duration', '2h', problems);
  const stepMs = duration(raw.step, 'step', '1m', problems);
  if (stepMs <= 0) problems.push('step: must be longer than 0');
  const steps = stepMs > 0 ? durationMs / stepMs : 0;
  if (stepMs > 0 && (!Number.isInteger(steps) || steps < 1)) problems.push(`duration: must be a whole, non-zero number of steps (step ${stepMs} ms)`);
  else if (steps > LIMITS.steps) problems.push(`duration: ${steps} steps is more than ${LIMITS.steps}; use a longer step`);
  /** Times must fall on the step grid, or the simulator would silently move them. */
  const onGrid = (ms: number, path: string): void => {
    if (stepMs > 0 && ms % stepMs !== 0) problems.push(`${path}: ${ms} ms is not a multiple of the step (${stepMs} ms)`);
  };

  const seed = overrideOr(options.overrides?.seed, raw.seed, 'seed', 1, problems, 0xffffffff);
  const backends = parseBackends(raw.backends, problems);
  const clients = parseClients(raw.clients, options.overrides?.clients, problems);
  const sessionExpiryMs = duration(raw.sessionExpiry, 'sessionExpiry', '30m', problems);
  const churn = parseChurn(raw.churn, problems);
  const events = parseEvents(raw.events, onGrid, problems);
  const chains = raw.chains === undefined ? undefined : parseChains(raw.chains, baseDir, problems);
  const key = raw.key === undefined ? parseEntries(['client-id'], 'key', baseDir, problems) : parseEntries(raw.key, 'key', baseDir, problems);
  const plugins = parsePlugins(raw.plugins, baseDir, problems);

  if (problems.length === 0) {
    const expected = (clients.count * churn.ratePerHour * durationMs) / 3_600_000;
    if (expected > LIMITS.reconnects) problems.push(`churn: about ${Math.round(expected)} reconnects (clients × rate × duration) is more than ${LIMITS.reconnects}`);
    for (const e of events) if (e.at >= durationMs) problems.push(`events: "${e.type}" at ${e.at} ms is not before the end of the scenario (${durationMs} ms)`);
  }
  const scenario: Scenario = {
    name: typeof raw.name === 'string' && raw.name ? raw.name : (options.defaultName ?? 'scenario'),
    description: typeof raw.description === 'string' ? raw.description.trim() : '',
    source,
    seed,
    durationMs,
    stepMs,
    steps,
    backends,
    clients,
    sessionExpiryMs,
    churn,
    events,
    chains,
    key,
    plugins,
  };
  // Which backend exists when (added, removed) can only be checked once the rest is sound.
  if (problems.length === 0) problems.push(...checkTimeline(scenario));
  if (problems.length > 0) throw new ScenarioError(source, problems);
  return scenario;
}

function unknownKeys(obj: Record<string, unknown>, allowed: readonly string[], path: string, problems: string[]): void {
  const extra = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (extra.length > 0) problems.push(`${path || 'top level'}: unknown keys ${extra.join(', ')} (allowed: ${allowed.join(', ')})`);
}

function duration(value: unknown, path: string, fallback: string, problems: string[]): number {
  const ms = parseDuration(value ?? fallback);
  if (ms === undefined) {
    const got = value === undefined ? 'is required' : `got ${JSON.stringify(value)}`;
    problems.push(`${path}: must be a duration such as "30m", "90s" or milliseconds; ${got}`);
    return 0;
  }
  return ms;
}

function integer(value: unknown, path: string, fallback: number, problems: string[], min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    problems.push(`${path}: must be a whole number from ${min} to ${max}; got ${JSON.stringify(value)}`);
    return fallback;
  }
  return value;
}

function share(value: unknown, path: string, fallback: number, problems: string[]): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    problems.push(`${path}: must be a number from 0 to 1; got ${JSON.stringify(value)}`);
    return fallback;
  }
  return value;
}

function overrideOr(override: number | undefined, value: unknown, path: string, fallback: number, problems: string[], max: number): number {
  if (override !== undefined) return integer(override, `--${path}`, fallback, problems, 0, max);
  return integer(value, path, fallback, problems, 0, max);
}

function mapping(value: unknown, path: string, problems: string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`${path}: must be a mapping`);
    return {};
  }
  return value as Record<string, unknown>;
}

function backendName(value: unknown, path: string, problems: string[]): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9._-]+$/.test(value)) {
    problems.push(`${path}: must be a backend name (letters, digits, . _ -); got ${JSON.stringify(value)}`);
    return '';
  }
  return value;
}

function parseBackends(value: unknown, problems: string[]): ScenarioBackend[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push('backends: must be a non-empty list of names or { name, weight } objects');
    return [];
  }
  const seen = new Set<string>();
  return value.map((entry, i) => {
    const path = `backends[${i}]`;
    let name: string;
    let weight = 1;
    if (typeof entry === 'string') name = backendName(entry, path, problems);
    else {
      const obj = mapping(entry, path, problems);
      unknownKeys(obj, ['name', 'weight'], path, problems);
      name = backendName(obj.name, `${path}.name`, problems);
      weight = integer(obj.weight, `${path}.weight`, 1, problems, 1, 256);
    }
    if (name && seen.has(name)) problems.push(`${path}: "${name}" is listed twice; backend names must be unique`);
    seen.add(name);
    return { name, weight };
  });
}

function parseClients(value: unknown, countOverride: number | undefined, problems: string[]): ClientsSpec {
  const obj = mapping(value, 'clients', problems);
  unknownKeys(obj, ['count', 'distribution', 'exponent', 'persistent', 'tenants'], 'clients', problems);
  const count = countOverride !== undefined
    ? integer(countOverride, '--clients', 100_000, problems, 1, LIMITS.clients)
    : integer(obj.count, 'clients.count', 100_000, problems, 1, LIMITS.clients);
  const distribution = (obj.distribution ?? 'uniform') as Distribution;
  if (distribution !== 'uniform' && distribution !== 'zipf') problems.push(`clients.distribution: must be uniform or zipf; got ${JSON.stringify(obj.distribution)}`);
  let exponent = 1;
  if (obj.exponent !== undefined) {
    if (typeof obj.exponent !== 'number' || !(obj.exponent >= 0 && obj.exponent <= 10)) problems.push('clients.exponent: must be a number from 0 to 10');
    else exponent = obj.exponent;
    if (distribution !== 'zipf') problems.push('clients.exponent: only applies to distribution: zipf');
  }
  const persistent = share(obj.persistent, 'clients.persistent', 0.5, problems);
  let tenants: string[] = [];
  if (obj.tenants !== undefined) {
    if (!Array.isArray(obj.tenants) || obj.tenants.length === 0 || !obj.tenants.every((t) => typeof t === 'string' && t.length > 0)) {
      problems.push('clients.tenants: must be a non-empty list of tenant names');
    } else tenants = obj.tenants as string[];
  }
  return { count, distribution, exponent, persistent, tenants };
}

function parseChurn(value: unknown, problems: string[]): Scenario['churn'] {
  const obj = mapping(value, 'churn', problems);
  unknownKeys(obj, ['rate', 'reconnectDelay'], 'churn', problems);
  let ratePerHour = 0.5;
  if (obj.rate !== undefined) {
    if (typeof obj.rate !== 'number' || !(obj.rate >= 0 && obj.rate <= 3600)) problems.push('churn.rate: must be drops per client per hour, a number from 0 to 3600');
    else ratePerHour = obj.rate;
  }
  const reconnectDelayMs = duration(obj.reconnectDelay, 'churn.reconnectDelay', '5m', problems);
  return { ratePerHour, reconnectDelayMs };
}

const EVENT_KEYS: Record<EventType, readonly string[]> = {
  add: ['backend', 'weight'],
  remove: ['backend'],
  restart: ['backend', 'downtime'],
  drain: ['backend', 'for'],
  'rolling-restart': ['downtime', 'interval'],
  flap: ['backend', 'down', 'up', 'count'],
};

function parseEvents(value: unknown, onGrid: (ms: number, path: string) => void, problems: string[]): ScenarioEvent[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push('events: must be a list of { at, type, ... } objects');
    return [];
  }
  const events: ScenarioEvent[] = [];
  value.forEach((entry, i) => {
    const path = `events[${i}]`;
    const obj = mapping(entry, path, problems);
    const type = obj.type as EventType;
    if (!EVENT_TYPES.includes(type)) {
      problems.push(`${path}.type: must be one of ${EVENT_TYPES.join(', ')}; got ${JSON.stringify(obj.type)}`);
      return;
    }
    unknownKeys(obj, ['at', 'type', ...EVENT_KEYS[type]], path, problems);
    const at = duration(obj.at, `${path}.at`, '', problems);
    onGrid(at, `${path}.at`);
    const positive = (key: string, fallback: string): number => {
      const ms = duration(obj[key], `${path}.${key}`, fallback, problems);
      if (ms <= 0) problems.push(`${path}.${key}: must be longer than 0`);
      onGrid(ms, `${path}.${key}`);
      return ms;
    };
    const backend = (): string => backendName(obj.backend, `${path}.backend`, problems);
    switch (type) {
      case 'add':
        events.push({ type, at, backend: backend(), weight: integer(obj.weight, `${path}.weight`, 1, problems, 1, 256) });
        break;
      case 'remove':
        events.push({ type, at, backend: backend() });
        break;
      case 'restart':
        events.push({ type, at, backend: backend(), downtimeMs: positive('downtime', '2m') });
        break;
      case 'drain':
        events.push({ type, at, backend: backend(), forMs: obj.for === undefined ? undefined : positive('for', '') });
        break;
      case 'rolling-restart': {
        const downtimeMs = positive('downtime', '2m');
        const intervalMs = obj.interval === undefined ? 2 * downtimeMs : positive('interval', '');
        // Overlapping restarts would take several backends down at once: a different event.
        if (intervalMs < downtimeMs) problems.push(`${path}.interval: must be at least the downtime, so one backend is down at a time`);
        events.push({ type, at, downtimeMs, intervalMs });
        break;
      }
      case 'flap':
        events.push({
          type, at, backend: backend(), downMs: positive('down', '1m'), upMs: positive('up', '1m'),
          count: integer(obj.count, `${path}.count`, 5, problems, 1, LIMITS.flapCount),
        });
        break;
    }
  });
  events.sort((a, b) => a.at - b.at);
  for (let i = 1; i < events.length; i++) {
    // Each event is measured over the time until the next one; two at once could not be told apart.
    if (events[i]!.at === events[i - 1]!.at) problems.push(`events: two events at ${events[i]!.at} ms; give each its own time`);
  }
  return events;
}

function parseChains(value: unknown, baseDir: string, problems: string[]): ChainSpec[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push('chains: must be a non-empty list; each a select list ([stick-table, least-connections]) or { name, select }');
    return [];
  }
  return value.map((entry, i) => {
    const path = `chains[${i}]`;
    if (Array.isArray(entry)) return namedChain(parseEntries(entry, path, baseDir, problems));
    const obj = mapping(entry, path, problems);
    unknownKeys(obj, ['name', 'select'], path, problems);
    if (obj.name !== undefined && (typeof obj.name !== 'string' || obj.name === '')) problems.push(`${path}.name: must be a non-empty string`);
    const select = parseEntries(obj.select, `${path}.select`, baseDir, problems);
    return namedChain(select, typeof obj.name === 'string' && obj.name ? obj.name : undefined);
  });
}

function parsePlugins(value: unknown, baseDir: string, problems: string[]): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((p) => typeof p === 'string' && p.length > 0)) {
    problems.push('plugins: must be a list of plugin module paths or package names');
    return [];
  }
  // Paths are relative to the scenario file, as in a Tether config; package names stay as they are.
  return (value as string[]).map((p) => (p.startsWith('.') && !isAbsolute(p) ? resolve(baseDir, p) : p));
}
