import { fileURLToPath } from 'node:url';
import { typeScriptNode, type ChildRegistry, type ManagedChild } from './children.ts';
import type { Command, ConnectCommand, ConnectResult, HoldCommand, HoldResult, PingPongCommand, PingPongResult, PublishCommand, PublishResult, ReleaseCommand, ReleaseResult, Reply } from './loadgen/protocol.ts';

const CHILD = fileURLToPath(new URL('./loadgen/child.ts', import.meta.url));
/** Extra time the generator gets to report after its own hard limit before we give up on it. */
const REPLY_MARGIN_MS = 30_000;

interface ResultOf {
  connect: ConnectResult;
  hold: HoldResult;
  release: ReleaseResult;
  pingpong: PingPongResult;
  publish: PublishResult;
}
type CommandOf<K extends Command['kind']> = Extract<ConnectCommand | HoldCommand | ReleaseCommand | PingPongCommand | PublishCommand, { kind: K }>;

/**
 * The load generator process seen from the benchmark: it is spawned once per run (with this
 * Node, process.execPath) and given one command at a time over IPC.
 */
export class LoadGenerator {
  readonly #child: ManagedChild;
  readonly #pending = new Map<number, (reply: Reply) => void>();
  #nextId = 1;

  private constructor(child: ManagedChild) {
    this.#child = child;
    child.child.on('message', (reply: Reply) => this.#pending.get(reply.id)?.(reply));
  }

  static start(registry: ChildRegistry): LoadGenerator {
    const [node, ...flags] = typeScriptNode();
    return new LoadGenerator(registry.spawn({ role: 'loadgen', command: node!, args: [...flags, CHILD], ipc: true }));
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Runs one command; rejects if the generator fails it, exits, or does not answer in time. */
  run<K extends Command['kind']>(command: CommandOf<K>): Promise<ResultOf[K]> {
    const id = this.#nextId++;
    return new Promise<ResultOf[K]>((resolve, reject) => {
      const done = (err: Error | undefined, result?: unknown): void => {
        clearTimeout(timer);
        this.#pending.delete(id);
        if (err) reject(err);
        else resolve(result as ResultOf[K]);
      };
      const timer = setTimeout(() => done(new Error(`load generator did not finish "${command.kind}" within ${command.limitMs + REPLY_MARGIN_MS} ms`)), command.limitMs + REPLY_MARGIN_MS);
      this.#pending.set(id, (reply) => (reply.ok ? done(undefined, reply.result) : done(new Error(`load generator failed "${command.kind}": ${reply.error}`))));
      void this.#child.exited.then((exit) => done(new Error(`load generator exited (${exit.code ?? exit.signal}) during "${command.kind}":\n${this.#child.tail()}`)));
      this.#child.child.send({ id, command });
    });
  }

  stop(): Promise<void> {
    return this.#child.stop();
  }
}
