import type { Server } from 'node:net';
import { ListenError } from '../errors.ts';
import { formatHostPort, type HostPort } from './address.ts';

/**
 * Binds a server and turns the usual failures into one line that names the option to change.
 * `option` is how the user sets this address, e.g. "--listen (TETHER_LISTEN, config key listen)".
 */
export function listen(server: Server | import('node:http').Server, address: HostPort, option: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = formatHostPort(address);
      if (err.code === 'EADDRINUSE') reject(new ListenError(`${where} is already in use; choose another address with ${option}`, { cause: err }));
      else if (err.code === 'EACCES') reject(new ListenError(`no permission to bind ${where} (ports below 1024 need privileges); choose another with ${option}`, { cause: err }));
      else if (err.code === 'EADDRNOTAVAIL') reject(new ListenError(`${where} is not an address of this host; choose another with ${option}`, { cause: err }));
      else reject(new ListenError(`cannot listen on ${where}: ${err.message}; check ${option}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
