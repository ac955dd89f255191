/**
 * For the benchmark's own child processes (responder, embedded brokers, load generator): exit on
 * SIGTERM/SIGINT, and also when the parent goes away without stopping us (killed, crashed), which
 * shows as the end of our stdin pipe. A benchmark must never leave processes behind.
 */
export function exitWithParent(onExit: () => Promise<void> | void = () => {}): void {
  let exiting = false;
  const exit = (): void => {
    if (exiting) return;
    exiting = true;
    // Bounded: a cleanup that hangs must not keep the process alive.
    setTimeout(() => process.exit(0), 3_000).unref();
    Promise.resolve()
      .then(onExit)
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
  process.stdin.on('end', exit);
  process.stdin.on('error', exit);
  process.stdin.resume();
}
