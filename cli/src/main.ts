import { TetherError } from '@tether/core';
import { UsageError } from './args.ts';
import { backendList, backendSet } from './commands/backend.ts';
import { explainCommand } from './commands/explain.ts';
import { pluginsCommand } from './commands/plugins.ts';
import { start } from './commands/start.ts';
import { tableClear, tableDelete, tableSet, tableShow } from './commands/table.ts';
import { validate } from './commands/validate.ts';
import { quietOnClosedPipe } from './output.ts';
import { COMMAND_USAGE, USAGE, type Command } from './usage.ts';

type Run = (argv: string[]) => Promise<void>;

/** A command with subcommands (`tether table set …`): its usage, and each subcommand's runner. */
interface Group {
  readonly usage: Command;
  readonly subcommands: Readonly<Record<string, Run>>;
}

/**
 * Every command. A new one is a line here and a usage text in usage.ts; its runner parses its
 * arguments with `parseCommand` (which answers -h/--help before anything starts).
 */
const COMMANDS: Readonly<Record<string, Run | Group>> = {
  start,
  validate,
  explain: explainCommand,
  plugins: pluginsCommand,
  table: { usage: 'table', subcommands: { show: tableShow, set: tableSet, delete: tableDelete, clear: tableClear } },
  backend: { usage: 'backend', subcommands: { list: backendList, set: backendSet } },
  // Loaded on demand: the benchmarks (simulator, load generator, reports, their wasm hash) are not
  // part of the balancer, and `start` runs again in every cluster worker.
  bench: {
    usage: 'bench',
    subcommands: {
      strategies: async (argv) => (await import('./commands/bench.ts')).benchStrategies(argv),
      network: async (argv) => (await import('./commands/bench-network.ts')).benchNetwork(argv),
    },
  },
};

/** Runs one command. Errors a user can fix are one line on stderr and exit code 1 (2 for usage). */
export async function main(argv: string[]): Promise<void> {
  quietOnClosedPipe();
  try {
    await run(argv);
  } catch (err) {
    if (!(err instanceof UsageError) && !(err instanceof TetherError)) throw err;
    process.stderr.write(`tether: ${err.message}\n${err instanceof UsageError && err.usage ? `\n${err.usage}` : ''}`);
    // Exit now: a failed start may leave handles (a plugin's timer) that would keep us alive.
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}

async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') return void process.stdout.write(USAGE);
  // `tether help table set` is `tether table set --help`.
  if (name === 'help') return rest.length === 0 ? void process.stdout.write(USAGE) : run([...rest, '--help']);
  const command = COMMANDS[name];
  if (command === undefined) throw new UsageError(`unknown command "${name}"; try: tether help`);
  if (typeof command === 'function') return command(rest);
  const [sub, ...subArgs] = rest;
  const usage = COMMAND_USAGE[command.usage];
  if (sub === '--help' || sub === '-h') return void process.stdout.write(usage);
  const runner = sub === undefined ? undefined : command.subcommands[sub];
  if (runner) return runner(subArgs);
  const names = Object.keys(command.subcommands);
  const choices = `${names.slice(0, -1).join(', ')} or ${names.at(-1)!}`;
  throw new UsageError(sub === undefined ? `${name} needs a subcommand: ${choices}` : `unknown ${name} subcommand "${sub}"; use ${choices}`, usage);
}

await main(process.argv.slice(2));
