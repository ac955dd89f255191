import { formatDuration } from '@tether/core';
import { eventLabel, type Scenario, type ScenarioEvent } from './scenario.ts';

/**
 * The scenario's events as primitive backend state changes on the step grid, plus the measuring
 * windows. A rolling restart becomes one `down` and one `up` per backend; a flap, `count` pairs;
 * a drain with `for`, a `drain` and a `ready`.
 */
export type ActionKind = 'add' | 'remove' | 'down' | 'up' | 'drain' | 'ready';

export interface Action {
  readonly step: number;
  readonly kind: ActionKind;
  readonly backend: string;
  /** Index of the scenario event it comes from. */
  readonly event: number;
}

export interface TimelineBackend {
  readonly name: string;
  readonly weight: number;
  /** False for a backend that an `add` event brings in later: it waits in maintenance until then. */
  readonly initiallyPresent: boolean;
}

/**
 * A stretch of the run that results are reported for: before the first event ("steady"), then
 * each event from its time until the next event (or the end). Moves and stickiness during a
 * window are charged to its event.
 */
export interface Window {
  readonly label: string;
  readonly fromStep: number;
  /** Exclusive. */
  readonly toStep: number;
  /** Index into scenario.events; undefined for the steady window. */
  readonly event: number | undefined;
}

export interface Timeline {
  /** Every backend that ever exists, initial ones first, then added ones in event order. */
  readonly backends: readonly TimelineBackend[];
  /** Sorted by step; actions of one step in the order their events were written. */
  readonly actions: readonly Action[];
  readonly windows: readonly Window[];
}

export function buildTimeline(scenario: Scenario): Timeline {
  const step = (ms: number): number => Math.round(ms / scenario.stepMs);
  const backends: TimelineBackend[] = scenario.backends.map((b) => ({ ...b, initiallyPresent: true }));
  const actions: Action[] = [];
  scenario.events.forEach((event, index) => {
    const at = step(event.at);
    const push = (offsetMs: number, kind: ActionKind, backend: string): void => {
      actions.push({ step: at + step(offsetMs), kind, backend, event: index });
    };
    switch (event.type) {
      case 'add':
        backends.push({ name: event.backend, weight: event.weight, initiallyPresent: false });
        push(0, 'add', event.backend);
        break;
      case 'remove':
        push(0, 'remove', event.backend);
        break;
      case 'restart':
        push(0, 'down', event.backend);
        push(event.downtimeMs, 'up', event.backend);
        break;
      case 'drain':
        push(0, 'drain', event.backend);
        if (event.forMs !== undefined) push(event.forMs, 'ready', event.backend);
        break;
      case 'rolling-restart':
        presentAt(scenario, event.at).forEach((name, i) => {
          push(i * event.intervalMs, 'down', name);
          push(i * event.intervalMs + event.downtimeMs, 'up', name);
        });
        break;
      case 'flap':
        for (let i = 0; i < event.count; i++) {
          const cycle = i * (event.downMs + event.upMs);
          push(cycle, 'down', event.backend);
          push(cycle + event.downMs, 'up', event.backend);
        }
        break;
    }
  });
  // Stable sort: within one step, actions keep the order of their events.
  actions.sort((a, b) => a.step - b.step);
  return { backends, actions, windows: windows(scenario, step) };
}

/** Backends present (configured or added, not removed) just before `atMs`, in configuration order. */
function presentAt(scenario: Scenario, atMs: number): string[] {
  const present = scenario.backends.map((b) => b.name);
  for (const e of scenario.events) {
    if (e.at >= atMs) break;
    if (e.type === 'add') present.push(e.backend);
    if (e.type === 'remove') present.splice(present.indexOf(e.backend), 1);
  }
  return present;
}

function windows(scenario: Scenario, step: (ms: number) => number): Window[] {
  const result: Window[] = [];
  const events = scenario.events;
  const first = events.length > 0 ? step(events[0]!.at) : scenario.steps;
  if (first > 0) result.push({ label: 'steady', fromStep: 0, toStep: first, event: undefined });
  events.forEach((event: ScenarioEvent, i) => {
    const next = i + 1 < events.length ? step(events[i + 1]!.at) : scenario.steps;
    result.push({ label: eventLabel(event), fromStep: step(event.at), toStep: next, event: i });
  });
  return result;
}

/**
 * Checks that every event acts on a backend that exists at that moment: `add` only a new name,
 * everything else only a backend that is present (configured or added, and not removed).
 * Returns problems with their event path, for the scenario loader to report.
 */
export function checkTimeline(scenario: Scenario): string[] {
  const problems: string[] = [];
  const initial = new Set(scenario.backends.map((b) => b.name));
  const present = new Set(initial);
  const ever = new Set(initial);
  const { actions } = buildTimeline(scenario);
  const where = (event: number): string => {
    const e = scenario.events[event]!;
    return `events: "${eventLabel(e)}" at ${formatDuration(e.at)}`;
  };
  for (const action of actions) {
    const { kind, backend } = action;
    if (kind === 'add') {
      if (ever.has(backend)) problems.push(`${where(action.event)}: "${backend}" already exists; an added backend needs a new name`);
      present.add(backend);
      ever.add(backend);
      continue;
    }
    if (!present.has(backend)) {
      const why = ever.has(backend) ? 'it has been removed by then' : `it is not a backend (known: ${[...ever].join(', ')})`;
      problems.push(`${where(action.event)}: cannot ${kind} "${backend}" at ${formatDuration(action.step * scenario.stepMs)}: ${why}`);
      continue;
    }
    if (kind === 'remove') present.delete(backend);
  }
  if (present.size === 0) problems.push('events: every backend is removed; the last part of the run could place no client');
  return problems;
}
