import { UsageError, wantsHelp } from './args.ts';
import { quietOnClosedPipe } from './output.ts';
import { COMMAND_USAGE, USAGE, type Command } from './usage.ts';

type Run = (argv: string[]) => Promise<void>;

/**
 * A command: its usage text, and how to load its runner. Runners are imported only when they run,
 * so `--help` answers at once and `tether table set` does not load the balancer's brokers. A
 * command without `usage` prints its own (bench network: its defaults come from @tether/bench).
 */
interface Leaf {
  readonly usage?: Command;
  readonly load: () => Promise<Run>;
}

/** A command with subcommands (`tether table set …`). */
interface Group {
  readonly usage: Command;
  readonly subcommands: Readonly<Record<string, Leaf>>;
}

/**
 * Every command. A new one is an entry here and a usage text in usage.ts; its runner parses its
 * arguments with `parseCommand` (which also answers -h/--help when the command is run directly).
 */
const COMMANDS: Readonly<Record<string, Leaf | Group>> = {
  start: { usage: 'start', load: async () => (await import('./commands/start.ts')).start },
  validate: { usage: 'validate', load: async () => (await import('./commands/validate.ts')).validate },
  explain: { usage: 'explain', load: async () => (await import('./commands/explain.ts')).explainCommand },
  plugins: { usage: 'plugins', load: async () => (await import('./commands/plugins.ts')).pluginsCommand },
  table: {
    usage: 'table',
    subcommands: {
      show: { usage: 'table show', load: async () => (await import('./commands/table.ts')).tableShow },
      set: { usage: 'table set', load: async () => (await import('./commands/table.ts')).tableSet },
      delete: { usage: 'table delete', load: async () => (await import('./commands/table.ts')).tableDelete },
      clear: { usage: 'table clear', load: async () => (await import('./commands/table.ts')).tableClear },
    },
  },
  backend: {
    usage: 'backend',
    subcommands: {
      list: { usage: 'backend list', load: async () => (await import('./commands/backend.ts')).backendList },
      set: { usage: 'backend set', load: async () => (await import('./commands/backend.ts')).backendSet },
    },
  },
  reload: { usage: 'reload', load: async () => (await import('./commands/reload.ts')).reloadCommand },
  status: { usage: 'status', load: async () => (await import('./commands/status.ts')).statusCommand },
  bench: {
    usage: 'bench',
    subcommands: {
      strategies: { usage: 'bench strategies', load: async () => (await import('./commands/bench.ts')).benchStrategies },
      network: { load: async () => (await import('./commands/bench-network.ts')).benchNetwork },
    },
  },
};

/** Runs one command. Errors a user can fix are one line on stderr and exit code 1 (2 for usage). */
export async function main(argv: string[]): Promise<void> {
  quietOnClosedPipe();
  try {
    await run(argv);
  } catch (err) {
    const { TetherError } = await import('@tether/core');
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
  if (!('subcommands' in command)) return runLeaf(command, rest);
  const [sub, ...subArgs] = rest;
  const usage = COMMAND_USAGE[command.usage];
  if (sub === '--help' || sub === '-h') return void process.stdout.write(usage);
  const leaf = sub === undefined ? undefined : command.subcommands[sub];
  if (leaf) return runLeaf(leaf, subArgs);
  const names = Object.keys(command.subcommands);
  const choices = `${names.slice(0, -1).join(', ')} or ${names.at(-1)!}`;
  throw new UsageError(sub === undefined ? `${name} needs a subcommand: ${choices}` : `unknown ${name} subcommand "${sub}"; use ${choices}`, usage);
}

function runLeaf(leaf: Leaf, argv: string[]): Promise<void> {
  if (leaf.usage && wantsHelp(argv)) return Promise.resolve(void process.stdout.write(COMMAND_USAGE[leaf.usage]));
  return leaf.load().then((run) => run(argv));
}

await main(process.argv.slice(2));
