/** An error as one line of text, for log fields and error messages. */
export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
