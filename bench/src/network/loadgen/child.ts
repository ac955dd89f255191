/**
 * The load generator process: `node child.ts`, with an IPC channel. It runs one command at a time
 * (see protocol.ts) and replies with its result. Being its own process, it has its own event loop
 * and CPU core; its CPU time is reported with every result, so a reader can tell whether it,
 * rather than the balancer, was the limit.
 */
import { exitWithParent } from '../exit-with-parent.ts';
import { connectStorm } from './connect-storm.ts';
import { hold, release } from './hold.ts';
import { pingPong } from './pingpong.ts';
import type { Command, Reply, Request } from './protocol.ts';
import { publish } from './publish.ts';

function run(command: Command): Promise<unknown> {
  switch (command.kind) {
    case 'connect':
      return connectStorm(command);
    case 'hold':
      return hold(command);
    case 'release':
      return release(command);
    case 'pingpong':
      return pingPong(command);
    case 'publish':
      return publish(command);
  }
}

if (!process.send) throw new Error('the load generator needs an IPC channel (spawn it with stdio ipc)');
exitWithParent();
process.on('disconnect', () => process.exit(0));
// Commands run one after another, in the order they arrive.
let queue = Promise.resolve();
process.on('message', (message: Request) => {
  queue = queue.then(async () => {
    let reply: Reply;
    try {
      reply = { id: message.id, ok: true, result: await run(message.command) };
    } catch (err) {
      reply = { id: message.id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) };
    }
    process.send!(reply);
  });
});
