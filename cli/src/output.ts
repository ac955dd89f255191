/** Shared pieces of the commands' output on stdout. */

export function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Keys are untrusted client input: keep each on one line and visible. */
export function quote(key: string): string {
  return /^[\x21-\x7e]*$/.test(key) ? key : JSON.stringify(key);
}

/**
 * Output to a pipe whose reader has gone (`tether plugins | head -1`) ends the command quietly,
 * with the exit code it already had, instead of an EPIPE stack trace. Any other write error is
 * reported in one line.
 */
export function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
      if (stream === process.stdout) process.stderr.write(`tether: cannot write the output: ${err.message}\n`);
      process.exit(1);
    });
  }
}
