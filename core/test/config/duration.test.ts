import { describe, expect, it } from 'vitest';
import { durationFormat, durationProblem, formatDuration, parseDuration } from '../../src/config/duration.ts';

// Durations are written the HAProxy way; every timeout and the stick-table expiry go through here.
describe('parseDuration', () => {
  it.each([
    ['a bare number of milliseconds', 250, 250],
    ['zero', 0, 0],
    ['digits without a unit (milliseconds)', '1500', 1500],
    ['ms', '500ms', 500],
    ['s', '5s', 5000],
    ['m', '30m', 1_800_000],
    ['h', '1h', 3_600_000],
    ['d', '1d', 86_400_000],
    ['a fraction, rounded to whole milliseconds', '1.5s', 1500],
    ['a fraction of a millisecond rounds', '0.4ms', 0],
    ['a space between number and unit', '10 s', 10_000],
    ['surrounding whitespace', '  2m ', 120_000],
  ])('reads %s', (_name, input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each([
    ['a negative number', -1],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['an empty string', ''],
    ['a unit alone', 's'],
    ['an unknown unit', '5w'],
    ['an upper-case unit', '5S'],
    ['a negative text', '-5s'],
    ['two durations', '1m30s'],
    ['words', 'soon'],
    ['null', null],
    ['undefined', undefined],
    ['an object', { ms: 5 }],
    ['a boolean', true],
  ])('returns undefined for %s', (_name, input) => {
    expect(parseDuration(input)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [1, '1ms'],
    [1500, '1500ms'],
    [1000, '1s'],
    [90_000, '90s'],
    [60_000, '1m'],
    [1_800_000, '30m'],
    [3_600_000, '1h'],
    // There is no day unit on output: a day is shown in hours.
    [86_400_000, '24h'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips through parseDuration for whole milliseconds', () => {
    for (const ms of [0, 1, 999, 1000, 1001, 59_000, 60_000, 61_000, 3_600_000, 7_200_000, 86_400_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});

// One format for every duration option of core and plugins: the same words, with the bounds in them.
describe('durationFormat', () => {
  it.each([
    [{}, 'soon', 'must be a duration: milliseconds, or a number with ms, s, m, h or d (e.g. "30s")'],
    [{ min: 1 }, 0, 'must be a duration of at least 1ms: '],
    [{ max: 60_000 }, '2m', 'must be a duration of at most 1m: '],
    [{ min: 1, max: 10_000 }, '11s', 'must be a duration from 1ms to 10s: '],
    [{ min: 1, max: 10_000 }, -5, 'must be a duration from 1ms to 10s: '],
  ])('with bounds %o refuses %o, saying so', (bounds, value, message) => {
    expect(durationProblem(value, bounds)).toContain(message);
    expect(() => durationFormat(bounds)(value)).toThrow(message);
  });

  it.each([
    [{}, 0],
    [{}, '1d'],
    [{ min: 1 }, '1ms'],
    [{ min: 1, max: 10_000 }, '10s'],
    [{ min: 1, max: 10_000 }, 10_000],
  ])('with bounds %o takes %o', (bounds, value) => {
    expect(durationProblem(value, bounds)).toBeUndefined();
    expect(() => durationFormat(bounds)(value)).not.toThrow();
  });
});
