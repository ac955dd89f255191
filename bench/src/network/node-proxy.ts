/**
 * The `node` baseline: the least a TCP balancer written on Node's `net` module can do per
 * connection. It accepts, waits for the client's first chunk, connects to the next backend in
 * turn, replays the chunk and then forwards bytes both ways with 'data' handlers (back-pressure,
 * half-close). No MQTT parsing, no stickiness, no timeouts, no logging, no accounting: whatever
 * Tether costs above this is Tether's; what this costs is Node's (and the kernel's).
 *
 * Run as its own process: `node node-proxy.ts PORT HOST:PORT...`; prints `{"listening":PORT}` on
 * one stdout line once it listens, and exits on SIGTERM or when its parent goes away.
 */
import { connect, createServer, type Socket } from 'node:net';
import { exitWithParent } from './exit-with-parent.ts';

function forward(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
  from.on('close', () => to.destroy());
}

const [portArg, ...backendArgs] = process.argv.slice(2);
const backends = backendArgs.map((arg) => {
  const at = arg.lastIndexOf(':');
  return { host: arg.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(arg.slice(at + 1)) };
});
if (!portArg || backends.length === 0 || backends.some((b) => !Number.isInteger(b.port))) {
  process.stderr.write('usage: node-proxy.ts PORT HOST:PORT...\n');
  process.exit(2);
}
let next = 0;
const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  client.on('error', () => {});
  client.once('data', (first: Buffer) => {
    client.pause();
    const backend = backends[next++ % backends.length]!;
    const upstream = connect({ host: backend.host, port: backend.port, allowHalfOpen: true, noDelay: true });
    upstream.on('error', () => {});
    upstream.write(first);
    forward(client, upstream);
    forward(upstream, client);
    client.resume();
  });
});
server.listen({ host: '127.0.0.1', port: Number(portArg) }, () => {
  process.stdout.write(`${JSON.stringify({ listening: Number(portArg) })}\n`);
});
exitWithParent(() => new Promise<void>((resolve) => server.close(() => resolve())));
