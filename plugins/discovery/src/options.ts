import { parseDuration, parseHostPort } from '@tether/core';

/** Convict formats shared by the providers' option schemas. */

export const durationFormat = (val: unknown): void => {
  if (parseDuration(val) === undefined) throw new Error('must be a duration such as "10s", "500ms" or milliseconds');
};

export const positiveDurationFormat = (val: unknown): void => {
  durationFormat(val);
  if (parseDuration(val)! < 1) throw new Error('must be at least 1 ms');
};

export const resolversFormat = (val: unknown): void => {
  if (!Array.isArray(val)) throw new Error('must be a list of "host:port" DNS servers');
  val.forEach((entry, i) => {
    if (typeof entry !== 'string') throw new Error(`[${i}] must be a "host:port" string`);
    try {
      parseHostPort(entry, '127.0.0.1');
    } catch (err) {
      throw new Error(`[${i}] ${(err as Error).message}`);
    }
  });
};

export const wholeNumber = (min: number, max: number) => (val: unknown): void => {
  if (!Number.isInteger(val) || (val as number) < min || (val as number) > max) throw new Error(`must be a whole number from ${min} to ${max}`);
};
