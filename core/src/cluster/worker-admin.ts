import type { Logger } from 'pino';
import type { AdminSource } from '../admin/admin-source.ts';
import type { MetricsJson } from '../metrics/tether-metrics.ts';
import { describe } from '../errors.ts';
import type { AdminState } from '../plugin.ts';
import type { IpcPort, PrimaryMessage, WorkerMessage } from './messages.ts';

/**
 * A worker's answers to the primary's admin API questions: the same view `tether start` with one
 * process serves over HTTP (`localAdminSource`), sent back over IPC for the primary to merge.
 * `metrics` gives this worker's metrics as JSON (TetherMetrics.json), or null when they are off.
 */
export function answerAdmin(port: IpcPort<PrimaryMessage, WorkerMessage>, source: AdminSource, log: Logger, metrics?: () => Promise<MetricsJson>): void {
  port.onMessage((message) => {
    if (message.t !== 'tether:admin') return;
    const { id, op, args = {} } = message;
    void (async (): Promise<unknown> => {
      switch (op) {
        case 'tables':
          return source.tables({
            ...(typeof args.limit === 'number' ? { limit: args.limit } : {}),
            ...(typeof args.cursor === 'string' ? { cursor: args.cursor } : {}),
            ...(typeof args.key === 'string' ? { key: args.key } : {}),
          });
        case 'stats':
          return source.stats();
        case 'backends':
          return source.backends();
        case 'set-state': {
          const result = await source.setState(String(args.id), args.state as AdminState);
          if (result.changed) log.info({ backend: args.id, state: args.state }, 'backend state set by admin');
          return result;
        }
        case 'set-weight': {
          const result = await source.setWeight(String(args.id), Number(args.weight));
          if (result.changed) log.info({ backend: args.id, weight: args.weight }, 'backend weight set by admin');
          return result;
        }
        case 'set-entry':
          return source.setEntry(String(args.key), String(args.backend));
        case 'delete-entry':
          return source.deleteEntry(String(args.key));
        case 'clear-entries':
          return source.clearEntries(typeof args.backend === 'string' ? args.backend : undefined);
        case 'explain':
          return source.explain(Buffer.from(String(args.hex ?? ''), 'hex'));
        case 'reload':
          return source.reload(typeof args.trigger === 'string' ? args.trigger : undefined);
        case 'status':
          return source.status();
        case 'metrics':
          return metrics ? metrics() : null;
      }
    })().then(
      (result) => port.send({ t: 'tether:admin-reply', id, ok: true, result }),
      (err: unknown) => port.send({ t: 'tether:admin-reply', id, ok: false, error: describe(err) }),
    );
  });
}
