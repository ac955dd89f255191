import type { Socket } from 'node:net';
import { Observable } from 'rxjs';
import { ClientClosedError } from '../errors.ts';

/** What an inspector says of the bytes read so far. */
export type Inspection<T> =
  | { readonly kind: 'need-more'; readonly atLeast?: number }
  | { readonly kind: 'reject'; readonly error: Error }
  | { readonly kind: 'done'; readonly value: T };

/**
 * The one read loop of a listener's first bytes (the CONNECT of a TCP client, the opening of a
 * WebSocket client): joins the chunks, shows them to `inspect` until it is done or refuses, then
 * pauses the socket and emits. The bytes are kept, not consumed (the splice replays them). Bounded
 * in time by one plain timer (fewer objects per connection than RxJS's `timeout`) whose error
 * `onTimeout` makes, and in size by the inspector; a client that closes first is ClientClosedError.
 * `inspect` also gets when the sniff started, to report its duration.
 */
export function sniffFirstBytes<T>(socket: Socket, timeoutMs: number, inspect: (view: Buffer, started: number) => Inspection<T>, onTimeout: () => Error): Observable<T> {
  return new Observable<T>((subscriber) => {
    const started = performance.now();
    let chunks: Buffer[] = [];
    let received = 0;
    // Bytes needed before looking again: a header tells the full length, so a packet trickling in
    // one byte per write is joined once, not once per byte.
    let needed = 1;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < needed) return;
      const view = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
      chunks = [view];
      const result = inspect(view, started);
      if (result.kind === 'need-more') {
        needed = result.atLeast ?? received + 1;
        return;
      }
      // Pause before our listener goes: a flowing socket with no 'data' listener drops bytes.
      socket.pause();
      clearTimeout(timer);
      if (result.kind === 'reject') return subscriber.error(result.error);
      subscriber.next(result.value);
      subscriber.complete();
    };
    const onEnd = (): void => subscriber.error(new ClientClosedError(received));
    const onError = (err: Error): void => subscriber.error(err);
    if (socket.destroyed || socket.readableEnded) {
      subscriber.error(new ClientClosedError(0));
      return undefined;
    }
    const timer = setTimeout(() => subscriber.error(onTimeout()), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    return () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
  });
}
