import { createServer, type AddressInfo } from 'node:net';

/**
 * A loopback port that was free a moment ago, for programs like mosquitto that cannot bind
 * port 0 and report it. Our own servers always bind port 0 instead.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
