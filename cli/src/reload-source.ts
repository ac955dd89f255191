import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FileWatcher, loadConfig, type ConfigSource, type ConfigSources, type Logger, type TetherConfig } from '@tether/core';

/** Quiet time after the config file's last change before it is reloaded (editors write in steps). */
const WATCH_DEBOUNCE_MS = 300;

/**
 * Where a reload reads the configuration: the same file, TETHER_* environment and flags as at
 * start (flags still win over the file), adjusted the way start adjusted it (embedded brokers).
 */
export function reloadSource(sources: ConfigSources, adjust: (config: TetherConfig) => TetherConfig = (c) => c): ConfigSource {
  return { file: sources.file ? resolve(sources.file) : undefined, read: () => adjust(loadConfig(sources)) };
}

/**
 * `--watch`: calls `reload` when the configuration file's content changes (a save that changes
 * nothing, or an event for another file of its directory, does not reload).
 */
export function watchConfig(sources: ConfigSources, log: Logger, reload: () => void): FileWatcher | undefined {
  if (!sources.file) return undefined;
  const file = resolve(sources.file);
  let last = digest(file);
  const watcher = new FileWatcher({
    files: [file],
    debounceMs: WATCH_DEBOUNCE_MS,
    signal: new AbortController().signal,
    changed: () => {
      const now = digest(file);
      if (now === last) return;
      last = now;
      reload();
    },
    onError: (dir, err) => log.warn({ dir, err: err.message }, 'cannot watch the configuration file; reload with SIGHUP or tether reload'),
  });
  log.info({ file }, 'watching the configuration file: a change reloads it');
  return watcher;
}

/** The file's content hash; undefined while it is missing (between an editor's delete and rename). */
function digest(file: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return undefined;
  }
}
