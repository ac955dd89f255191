import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

export interface FileWatcherOptions {
  /** Absolute paths of the files whose change matters. */
  readonly files: readonly string[];
  /** Quiet time after the last event before `changed` is called: files are rarely written at one instant. */
  readonly debounceMs: number;
  /** Stops watching when aborted. */
  readonly signal: AbortSignal;
  readonly changed: () => void;
  /** Told when a directory cannot be watched (the other ways to reload still work). */
  readonly onError?: (dir: string, err: Error) => void;
}

/**
 * Calls `changed`, debounced, when one of the files may have changed. It watches the files'
 * directories rather than the files: tools replace a file by renaming a new one over it (editors,
 * certbot, Kubernetes ConfigMap and Secret volumes swap a symlink), after which a watch on the old
 * file would never fire again. Events for other files of the directory pass through too; the
 * caller notices when nothing changed. Nothing here keeps the process alive.
 */
export class FileWatcher {
  readonly #options: FileWatcherOptions;
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: FileWatcherOptions) {
    this.#options = options;
    options.signal.addEventListener('abort', () => this.close(), { once: true });
    for (const dir of new Set(options.files.map((f) => dirname(f)))) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#schedule());
        watcher.on('error', (err) => options.onError?.(dir, err));
        this.#watchers.push(watcher);
      } catch (err) {
        options.onError?.(dir, err as Error);
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const w of this.#watchers.splice(0)) w.close();
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#options.changed(), this.#options.debounceMs);
    this.#timer.unref();
  }
}
