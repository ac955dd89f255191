import { isTetherMessage, type IpcPort, type PrimaryMessage, type WorkerMessage } from './messages.ts';

/** A cluster worker's IPC channel to the primary (its `process`), as an IpcPort. Sends after the channel closed are dropped. */
export function processPort(): IpcPort<PrimaryMessage, WorkerMessage> {
  return {
    send(message) {
      if (!process.connected || !process.send) return;
      try {
        // A callback, so a channel closing mid-send is not an 'error' event that ends this worker.
        process.send(message, undefined, undefined, ignoreSendError);
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

/** The primary is gone: cluster makes this worker exit. */
function ignoreSendError(): void {}
