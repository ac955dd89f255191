import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

export type ReloadTrigger = 'SIGHUP' | 'file change';

export interface ReloaderOptions {
  /** The files whose change should reload (certificates, keys, CA bundles): absolute paths. */
  readonly files: readonly string[];
  /** Watch the files; false reloads on SIGHUP only. */
  readonly watch: boolean;
  /** Quiet time after the last file event before reloading: a certificate and its key are rarely written at the same instant. */
  readonly debounceMs: number;
  /** Stops everything when aborted (Tether shutting down). */
  readonly signal: AbortSignal;
  readonly reload: (trigger: ReloadTrigger) => void;
  /** Told when a directory cannot be watched; SIGHUP still works. */
  readonly onWatchError?: (dir: string, err: Error) => void;
}

/**
 * Calls `reload` on SIGHUP and, debounced, when one of the files changes. It watches the files'
 * directories rather than the files: certificate tools replace a file by renaming a new one over
 * it (certbot, Kubernetes secret volumes swap a symlink), after which a watch on the old file
 * would never fire again. Events for other files of the directory pass through too; the reload
 * itself notices when nothing changed. Nothing here keeps the process alive.
 */
export class Reloader {
  readonly #options: ReloaderOptions;
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #onSighup = (): void => this.#options.reload('SIGHUP');

  constructor(options: ReloaderOptions) {
    this.#options = options;
    process.on('SIGHUP', this.#onSighup);
    options.signal.addEventListener('abort', () => this.close(), { once: true });
    if (options.watch) this.#watch();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    process.off('SIGHUP', this.#onSighup);
    clearTimeout(this.#timer);
    for (const w of this.#watchers.splice(0)) w.close();
  }

  #watch(): void {
    for (const dir of new Set(this.#options.files.map((f) => dirname(f)))) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#schedule());
        watcher.on('error', (err) => this.#options.onWatchError?.(dir, err));
        this.#watchers.push(watcher);
      } catch (err) {
        this.#options.onWatchError?.(dir, err as Error);
      }
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#options.reload('file change'), this.#options.debounceMs);
    this.#timer.unref();
  }
}
