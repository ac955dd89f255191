import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Reads the PEM files a TLS configuration names. Every error says which file and why, in one
 * line, because it ends up in a start failure or a "reload failed" log line.
 */
export class PemFiles {
  readonly #contents = new Map<string, Buffer>();
  readonly #hash = createHash('sha256');

  read(path: string, what: string): Buffer {
    const cached = this.#contents.get(path);
    if (cached) return cached;
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new Error(`${what} ${path} cannot be read: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message}`);
    }
    if (!data.includes('-----BEGIN ')) throw new Error(`${what} ${path} is not a PEM file (no "-----BEGIN" line)`);
    this.#contents.set(path, data);
    this.#hash.update(path).update('\0').update(data).update('\0');
    return data;
  }

  /** The first certificate of a PEM file (the leaf, when the file holds a chain). */
  certificate(path: string, what: string): { pem: Buffer; x509: X509Certificate } {
    const pem = this.read(path, what);
    try {
      return { pem, x509: new X509Certificate(pem) };
    } catch (err) {
      throw new Error(`${what} ${path} holds no readable certificate: ${opensslReason(err)}`);
    }
  }

  /** A digest of everything read, to tell whether a file event changed anything. */
  digest(): string {
    return this.#hash.copy().digest('hex');
  }
}

/** OpenSSL's short reason ("key values mismatch") rather than its whole error string. */
export function opensslReason(err: unknown): string {
  const e = err as { reason?: unknown; message?: unknown };
  if (typeof e?.reason === 'string' && e.reason) return e.reason;
  return typeof e?.message === 'string' ? e.message : String(err);
}
