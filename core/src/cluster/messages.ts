/**
 * The IPC protocol between the primary process and its workers (`workers` above 1). Every message
 * is a plain JSON object whose `t` starts with `tether:`, so Node's own cluster messages (and
 * anything else on the channel) are told apart by a glance at one field.
 *
 * Worker → primary                          Primary → worker
 *   peers      a batch of broadcasts          peers      a relayed batch, numbered (seq)
 *   sync       joined: send me the state      snapshot-request  give worker `to` your state
 *   snapshot-chunk / -end  state for `to`     snapshot-chunk / -end  the state you asked for
 *   ready      listening, at these addresses  admin      an admin API question (id, op)
 *   failed     could not start: message       stop       close the server and exit
 *   admin-reply  the answer to question id
 */

/** One broadcast: the channel (a chain entry) and the plugin's message. */
export type PeerEnvelope = readonly [channel: string, message: unknown];

/** The admin API questions the primary asks its workers. */
export type AdminOp = 'tables' | 'stats' | 'backends' | 'set-state' | 'set-weight' | 'set-entry' | 'delete-entry' | 'clear-entries' | 'explain' | 'reload' | 'status' | 'metrics';

export type WorkerMessage =
  | { readonly t: 'tether:peers'; readonly batch: readonly PeerEnvelope[] }
  | { readonly t: 'tether:sync' }
  | { readonly t: 'tether:snapshot-chunk'; readonly to: number; readonly channel: string; readonly chunk: unknown }
  | { readonly t: 'tether:snapshot-end'; readonly to: number; readonly seq: number }
  | { readonly t: 'tether:ready'; readonly listeners: Readonly<Record<string, string>> }
  | { readonly t: 'tether:failed'; readonly message: string }
  | { readonly t: 'tether:admin-reply'; readonly id: number; readonly ok: boolean; readonly result?: unknown; readonly error?: string };

export type PrimaryMessage =
  | { readonly t: 'tether:peers'; readonly seq: number; readonly from: number; readonly batch: readonly PeerEnvelope[] }
  | { readonly t: 'tether:snapshot-request'; readonly to: number }
  | { readonly t: 'tether:snapshot-chunk'; readonly channel: string; readonly chunk: unknown }
  | { readonly t: 'tether:snapshot-end'; readonly seq: number }
  | { readonly t: 'tether:admin'; readonly id: number; readonly op: AdminOp; readonly args?: Readonly<Record<string, unknown>> }
  | { readonly t: 'tether:stop' };

/** One end of an IPC channel, as the cluster code needs it (a worker's `process`, or a test double). */
export interface IpcPort<In, Out> {
  send(message: Out): void;
  onMessage(handler: (message: In) => void): void;
}

export function isTetherMessage(message: unknown): message is { t: string } {
  return typeof message === 'object' && message !== null && typeof (message as { t?: unknown }).t === 'string' && (message as { t: string }).t.startsWith('tether:');
}

/** The environment variable through which the primary gives its workers the embedded brokers' addresses. */
export const WORKER_BACKENDS_ENV = 'TETHER_WORKER_BACKENDS';
