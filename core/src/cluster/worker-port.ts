import { isTetherMessage, type IpcPort, type PrimaryMessage, type WorkerMessage } from './messages.ts';

/** A cluster worker's IPC channel to the primary (its `process`), as an IpcPort. Sends after the channel closed are dropped. */
export function processPort(): IpcPort<PrimaryMessage, WorkerMessage> {
  return {
    send(message) {
      if (!process.connected || !process.send) return;
      try {
        process.send(message);
      } catch {
        // The primary is gone; cluster makes this worker exit.
      }
    },
    onMessage(handler) {
      process.on('message', (message: unknown) => {
        if (isTetherMessage(message)) handler(message as PrimaryMessage);
      });
    },
  };
}
