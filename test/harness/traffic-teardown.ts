/**
 * A stack of cleanup steps. A test registers each thing right after starting it; afterEach runs
 * them newest first (clients before the balancer before the brokers), every step even when an
 * earlier one fails, and then reports the failures together.
 */
export class Teardown {
  readonly #steps: { what: string; run: () => unknown }[] = [];

  /** Registers `run` and hands back `value`, so starting and registering fit on one line. */
  add<T>(what: string, value: T, run: (value: T) => unknown): T {
    this.#steps.push({ what, run: () => run(value) });
    return value;
  }

  defer(what: string, run: () => unknown): void {
    this.#steps.push({ what, run });
  }

  async run(): Promise<void> {
    const errors: string[] = [];
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        await step.run();
      } catch (err) {
        errors.push(`${step.what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (errors.length > 0) throw new Error(`teardown failed:\n  ${errors.join('\n  ')}`);
  }
}
