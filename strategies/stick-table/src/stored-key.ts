import { createHash } from 'node:crypto';

/** What a digest-stored key starts with; a key that itself starts so is stored as its digest too. */
export const DIGEST_PREFIX = 'sha256:';

/**
 * The form in which `key` is stored: the key itself when at most `keyLength` characters long, else
 * `sha256:` and the base64url SHA-256 of its UTF-8 bytes (50 characters). Memory per entry stays
 * bounded (MQTT allows 65,535-byte client ids) without truncation's silent sharing: two ids with
 * the same first `keyLength` characters get two entries. A short key that starts with the prefix
 * is digested as well, so no client id can name another key's entry. Every instance computes the
 * same form, so a shared (Redis) table agrees.
 */
export function storedKey(key: string, keyLength: number): string {
  if (key.length <= keyLength && !key.startsWith(DIGEST_PREFIX)) return key;
  return DIGEST_PREFIX + createHash('sha256').update(key, 'utf8').digest('base64url');
}
