import { resolve } from 'node:path';
import { defineProvider, FileWatcher, parseDuration, PLUGIN_API_VERSION, type PluginContext, type ProvidedBackend, type Provider } from '@tether/core';
import { readBackendFile } from './backend-file.ts';
import { durationFormat } from './options.ts';

export interface FileOptions {
  path: string;
  debounce: string | number;
}

/**
 * Backends listed in a YAML or JSON file, read again whenever the file changes (a rename over it
 * included: consul-template, Kubernetes ConfigMap volumes) and on `tether reload`. A file that
 * cannot be read or is invalid at start fails the start; later, the last good list stays and the
 * error is logged until the file is fixed.
 */
export const fileProvider = defineProvider<FileOptions>({
  name: 'file',
  kind: 'provider',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Backends listed in a YAML/JSON file, watched for changes.',
  options: {
    path: { doc: 'The file (.yaml, .yml or .json), relative to the working directory.', format: String, default: '' },
    debounce: { doc: 'Quiet time after a change before the file is read (writers rarely write at one instant).', format: durationFormat, default: '100ms' },
  },
  create(ctx, options) {
    if (!options.path) throw new Error('options.path is required: the file of backends');
    return new FileProvider(ctx, resolve(options.path), parseDuration(options.debounce)!);
  },
});

class FileProvider implements Provider {
  readonly label: string;
  readonly #ctx: PluginContext;
  readonly #path: string;
  #backends: ProvidedBackend[];
  #text: string;
  #emit: ((backends: readonly ProvidedBackend[]) => void) | undefined;
  /** The file is bad now: the error is logged once until it is good again. */
  #broken = false;

  constructor(ctx: PluginContext, path: string, debounceMs: number) {
    this.#ctx = ctx;
    this.#path = path;
    this.label = `file ${path}`;
    ctx.stats.inc('reads', 0);
    ctx.stats.inc('read_errors', 0);
    // At start an unreadable file is the operator's mistake to fix now: create fails with it.
    this.#backends = readBackendFile(path);
    this.#text = JSON.stringify(this.#backends);
    new FileWatcher({
      files: [path], debounceMs, signal: ctx.signal, changed: () => this.#read(),
      onError: (dir, err) => ctx.log.warn({ dir, err: err.message }, 'cannot watch the directory of the backends file; tether reload still reads it'),
    });
  }

  start(emit: (backends: readonly ProvidedBackend[]) => void): void {
    this.#emit = emit;
    emit(this.#backends);
  }

  reload(): void {
    this.#read();
  }

  #read(): void {
    let backends: ProvidedBackend[];
    try {
      backends = readBackendFile(this.#path);
    } catch (err) {
      this.#ctx.stats.inc('read_errors');
      if (!this.#broken) this.#ctx.log.error({ provider: this.label, err: (err as Error).message, kept: this.#backends.length }, 'backends file is invalid; keeping the last good list');
      this.#broken = true;
      return;
    }
    this.#ctx.stats.inc('reads');
    if (this.#broken) this.#ctx.log.info({ provider: this.label }, 'backends file is valid again');
    this.#broken = false;
    const text = JSON.stringify(backends);
    if (text === this.#text) return;
    this.#text = text;
    this.#backends = backends;
    this.#emit?.(backends);
  }
}
