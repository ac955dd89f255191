import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseHostPort, WEIGHT_MAX, WEIGHT_MIN, type ProvidedBackend } from '@tether/core';
import YAML from 'yaml';

/**
 * Reads a file of backends: YAML (.yaml, .yml) or JSON (.json), either a list or a mapping with a
 * `backends` list. Each entry is `host:port`, `name=host:port`, or `{ name, address, weight,
 * metadata }`. Throws an Error saying what is wrong (and where) on anything else.
 */
export function readBackendFile(path: string): ProvidedBackend[] {
  const text = readFileSync(path, 'utf8');
  let doc: unknown;
  try {
    doc = extname(path) === '.json' ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
  const list = Array.isArray(doc) ? doc : doc && typeof doc === 'object' && Array.isArray((doc as { backends?: unknown }).backends) ? (doc as { backends: unknown[] }).backends : undefined;
  if (!list) throw new Error(`${path}: expected a list of backends, or a mapping with a "backends" list`);
  const names = new Set<string>();
  return list.map((entry, i) => {
    const backend = toBackend(entry, `${path}: [${i}]`);
    if (names.has(backend.name)) throw new Error(`${path}: [${i}] name "${backend.name}" is used twice`);
    names.add(backend.name);
    return backend;
  });
}

function toBackend(entry: unknown, at: string): ProvidedBackend {
  if (typeof entry === 'string') {
    const eq = entry.indexOf('=');
    const [name, address] = eq > 0 ? [entry.slice(0, eq), entry.slice(eq + 1)] : [entry, entry];
    checkAddress(address, at);
    return { name, address };
  }
  if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw new Error(`${at} must be "host:port", "name=host:port" or { name, address, weight, metadata }`);
  const { name, address, weight, metadata, ...rest } = entry as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw new Error(`${at} has unknown keys: ${Object.keys(rest).join(', ')} (allowed: name, address, weight, metadata)`);
  if (typeof address !== 'string') throw new Error(`${at}.address must be a "host:port" string`);
  checkAddress(address, at);
  if (name !== undefined && (typeof name !== 'string' || name.length === 0)) throw new Error(`${at}.name must be a non-empty string`);
  if (weight !== undefined && (!Number.isInteger(weight) || (weight as number) < WEIGHT_MIN || (weight as number) > WEIGHT_MAX)) {
    throw new Error(`${at}.weight must be a whole number from ${WEIGHT_MIN} to ${WEIGHT_MAX}`);
  }
  if (metadata !== undefined && (!metadata || typeof metadata !== 'object' || Object.values(metadata).some((v) => typeof v !== 'string'))) {
    throw new Error(`${at}.metadata must be a mapping of strings`);
  }
  return {
    name: (name as string | undefined) ?? address,
    address,
    ...(weight !== undefined ? { weight: weight as number } : {}),
    ...(metadata !== undefined ? { metadata: metadata as Record<string, string> } : {}),
  };
}

function checkAddress(address: string, at: string): void {
  try {
    parseHostPort(address);
  } catch (err) {
    throw new Error(`${at}: ${(err as Error).message}`);
  }
}
