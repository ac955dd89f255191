import { closeSync, openSync, readSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';

/**
 * A loopback port that was free a moment ago, for the processes we cannot ask to bind port 0 and
 * tell us (HAProxy; Tether at log level warn, which does not print its bound address).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Whether something listens on TCP `port`, per the kernel's tables. Read rather than probed with
 * a connection, because a probe would be a session of the balancer being measured.
 *
 * The kernel lists listening sockets before all others, and after a connect storm the others are
 * tens of thousands of TIME_WAIT entries that take a long while to generate; so the table is read
 * in pieces and only up to the first row that is not LISTEN.
 */
export function isListening(port: number): boolean {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return listensIn('/proc/net/tcp', hexPort) || listensIn('/proc/net/tcp6', hexPort);
}

const CHUNK = 16 * 1024;
/** Bound on what is read of one table (listeners only: a few hundred bytes each). */
const MAX_TABLE_BYTES = 16 * 1024 * 1024;

function listensIn(table: string, hexPort: string): boolean {
  let fd: number;
  try {
    fd = openSync(table, 'r');
  } catch {
    return false;
  }
  try {
    const buf = Buffer.alloc(CHUNK);
    let partial = '';
    let header = true;
    for (let read = 0; read < MAX_TABLE_BYTES; ) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) return false;
      read += n;
      const lines = (partial + buf.toString('latin1', 0, n)).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (header) {
          header = false;
          continue;
        }
        // Columns: sl local_address rem_address st ...; state 0A is LISTEN, and listeners come first.
        const cols = line.trim().split(/\s+/);
        if (cols[3] !== '0A') return false;
        if (cols[1]?.endsWith(hexPort)) return true;
      }
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * Polls `condition` until it holds or `timeoutMs` passes (then throws `what`). Bounded in tries as
 * well as time, so it ends even if timers lag.
 */
export async function pollUntil(condition: () => boolean, timeoutMs: number, what: () => string, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const maxTries = Math.ceil(timeoutMs / intervalMs) + 1;
  for (let i = 0; i < maxTries; i++) {
    if (condition()) return;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
}
