import { TetherError } from '@tether/core';
import { UsageError } from './args.ts';
import { backendCommand } from './commands/backend.ts';
import { explainCommand } from './commands/explain.ts';
import { pluginsCommand } from './commands/plugins.ts';
import { reloadCommand } from './commands/reload.ts';
import { statusCommand } from './commands/status.ts';
import { start } from './commands/start.ts';
import { tableShow } from './commands/table-show.ts';
import { validate } from './commands/validate.ts';
import { USAGE } from './usage.ts';

/** Runs one command. Errors a user can fix are one line on stderr and exit code 1 (2 for usage). */
export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start':
        return await start(rest);
      case 'validate':
        return await validate(rest);
      case 'explain':
        return await explainCommand(rest);
      case 'table':
        if (rest[0] !== 'show') throw new UsageError('usage: tether table show [--admin HOST:PORT | -c FILE] [--json]');
        return await tableShow(rest.slice(1));
      case 'plugins':
        return await pluginsCommand(rest);
      case 'backend':
        return await backendCommand(rest);
      case 'reload':
        return await reloadCommand(rest);
      case 'status':
        return await statusCommand(rest);
      case 'bench':
        // Loaded on demand: the benchmarks (simulator, load generator, reports, their wasm hash)
        // are not part of the balancer, and `start` runs again in every cluster worker.
        return await (await import('./commands/bench.ts')).benchCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return;
      default:
        throw new UsageError(`unknown command "${command}"; try: tether help`);
    }
  } catch (err) {
    if (!(err instanceof UsageError) && !(err instanceof TetherError)) throw err;
    process.stderr.write(`tether: ${err.message}\n`);
    // Exit now: a failed start may leave handles (a plugin's timer) that would keep us alive.
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}

await main(process.argv.slice(2));
