import { FileWatcher } from '@tether/core';

/** `reload`: Tether reloaded its configuration (SIGHUP, `tether reload`) and kept this plugin; `file change`: a watched file changed. */
export type ReloadTrigger = 'reload' | 'file change';

export interface ReloaderOptions {
  /** The files whose change should reload (certificates, keys, CA bundles): absolute paths. */
  readonly files: readonly string[];
  /** Watch the files; false reloads only with Tether's configuration reload. */
  readonly watch: boolean;
  /** Quiet time after the last file event before reloading: a certificate and its key are rarely written at the same instant. */
  readonly debounceMs: number;
  /** Stops everything when aborted (the product is retired or Tether stops). */
  readonly signal: AbortSignal;
  readonly reload: (trigger: ReloadTrigger) => void;
  /** Told when a directory cannot be watched; a configuration reload still works. */
  readonly onWatchError?: (dir: string, err: Error) => void;
}

/**
 * Calls `reload` when one of the files changes (debounced, through core's FileWatcher, which
 * watches the directories so that renamed-over files are seen) and when Tether's configuration
 * reload keeps the plugin (`reloadNow`, from the product's `reload` hook). SIGHUP is Tether's:
 * it reloads the whole configuration, and with it these files.
 */
export class Reloader {
  readonly #options: ReloaderOptions;
  readonly #watcher: FileWatcher | undefined;

  constructor(options: ReloaderOptions) {
    this.#options = options;
    this.#watcher = options.watch
      ? new FileWatcher({ files: options.files, debounceMs: options.debounceMs, signal: options.signal, changed: () => options.reload('file change'), ...(options.onWatchError ? { onError: options.onWatchError } : {}) })
      : undefined;
  }

  /** Tether reloaded its configuration and kept this plugin: read the files again. */
  reloadNow(): void {
    if (!this.#options.signal.aborted) this.#options.reload('reload');
  }

  close(): void {
    this.#watcher?.close();
  }
}
