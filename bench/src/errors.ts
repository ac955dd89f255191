import { TetherError } from '@tether/core';

/**
 * A scenario (or a chain given on the command line) that cannot be run. A TetherError, so the CLI
 * prints it as one line and exits 1, like a configuration error. `problems` lists every problem
 * found, not just the first, so one edit fixes them all.
 */
export class ScenarioError extends TetherError {
  readonly problems: readonly string[];

  constructor(where: string, problems: readonly string[]) {
    const list = problems.length === 1 ? ` ${problems[0]!}` : `\n  ${problems.join('\n  ')}`;
    super('TETHER_ERR_BENCH_SCENARIO', `invalid scenario ${where}:${list}`);
    this.problems = problems;
  }
}

/**
 * A chain Tether itself would refuse to start with (an unknown plugin, invalid options, a chain
 * that can leave a client without a backend): the core's own message, prefixed with the chain.
 */
export class ChainError extends TetherError {
  readonly chain: string;

  constructor(chain: string, cause: TetherError) {
    super('TETHER_ERR_BENCH_CHAIN', `chain "${chain}": ${cause.message.replace(/\n\s*/g, ' ')}`, { cause });
    this.chain = chain;
  }
}
