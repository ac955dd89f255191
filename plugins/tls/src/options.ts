/**
 * Option formats shared by the TLS plugins. Convict calls a `format` function with the value and
 * reports what it throws, prefixed with the option's name, so each message says what is expected.
 */
import { isAbsolute, resolve } from 'node:path';
import { durationFormat, parseDuration } from '@tether/core';

export const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

export const VERIFY_MODES = ['none', 'optional', 'required'] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

export const duration = durationFormat();

export const stringList = (value: unknown): void => {
  check(Array.isArray(value) && value.every((v) => typeof v === 'string' && v.length > 0), 'must be a list of non-empty strings');
};

export const tlsVersion = (value: unknown): void => {
  check(TLS_VERSIONS.includes(value as TlsVersion), `must be one of ${TLS_VERSIONS.join(', ')}`);
};

/** Checks that `entry` is an object with only `allowed` keys, naming the entry in the message. */
export function checkKeys(entry: unknown, allowed: readonly string[], at: string): asserts entry is Record<string, unknown> {
  check(entry !== null && typeof entry === 'object' && !Array.isArray(entry), `${at} must be an object`);
  const unknown = Object.keys(entry).filter((k) => !allowed.includes(k));
  check(unknown.length === 0, `${at} has unknown keys: ${unknown.join(', ')} (allowed: ${allowed.join(', ')})`);
}

export function checkString(value: unknown, at: string, required = false): void {
  if (value === undefined && !required) return;
  check(typeof value === 'string' && value.length > 0, `${at} must be a non-empty string${required ? '' : ' when given'}`);
}

/**
 * A file path from the options, absolute. Plugins are not told where the configuration file is,
 * so a relative path is taken from the directory Tether was started in (the README says so).
 */
export function filePath(path: string): string {
  return isAbsolute(path) ? path : resolve(process.cwd(), path);
}

export function durationMs(value: string | number): number {
  return parseDuration(value)!;
}
