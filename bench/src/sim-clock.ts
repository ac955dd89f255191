/**
 * The simulated clock handed to every plugin as `now`: stick-table expiry and everything else
 * time-based then runs in simulated time, a two-hour scenario in seconds. It starts at a fixed
 * epoch (not Date.now()) so that runs are identical, timestamps included.
 */
export class SimClock {
  static readonly EPOCH = Date.UTC(2025, 0, 1);
  readonly #stepMs: number;
  #ms = SimClock.EPOCH;

  constructor(stepMs: number) {
    this.#stepMs = stepMs;
  }

  /** A bound function, so it can be passed around as `now`. */
  readonly now = (): number => this.#ms;

  setStep(step: number): void {
    this.#ms = SimClock.EPOCH + step * this.#stepMs;
  }
}
