import type { Socket } from 'node:net';
import { ClientClosedError } from '@tether/core';

/** The TLS record type of a handshake message: every ClientHello starts with it. */
export const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * Waits for the client's first bytes and puts them back (unshift), so whatever reads the socket
 * next (the TLS layer) sees them too. Knowing the first byte lets a plaintext client be told
 * apart at once, instead of after a handshake timeout. Resolves with the first byte; rejects
 * with ClientClosedError when the client leaves first, or with the socket's error.
 */
export function firstByte(socket: Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      cleanup();
      // Paused before our listener goes, so nothing arriving meanwhile is dropped.
      socket.pause();
      socket.unshift(chunk);
      resolve(chunk[0]!);
    };
    const onEnd = (): void => {
      cleanup();
      reject(new ClientClosedError(0));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
  });
}
