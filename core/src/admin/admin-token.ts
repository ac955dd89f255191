import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * The admin API's bearer token. It never leaves as text by accident: JSON (and so every pino log
 * line), `String()` and `util.inspect` show `[redacted]`; only `reveal()` (the CLI, to send it)
 * gives the value. Compared in constant time: both sides are hashed first, so neither the
 * content nor the length of the expected token leaks through timing.
 */
export class AdminToken {
  readonly #value: string;
  readonly #digest: Buffer;
  /** Where it came from, for messages: `admin.token`, `admin.tokenFile /etc/tether/token`, … */
  readonly source: string;

  constructor(value: string, source: string) {
    this.#value = value;
    this.#digest = digest(value);
    this.source = source;
  }

  matches(candidate: string): boolean {
    return timingSafeEqual(digest(candidate), this.#digest);
  }

  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return `AdminToken [redacted] (from ${this.source})`;
  }
}
