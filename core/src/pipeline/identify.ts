import { PluginHookError } from '../errors.ts';
import type { ConnInfo, Extractor } from '../plugin.ts';
import type { Named } from '../plugins/plugin-loader.ts';

/** Runs the extractor chain: the first non-empty key wins; none leaves the client keyless. */
export function identify(conn: ConnInfo, extractors: readonly Named<Extractor>[]): void {
  for (const { name, product } of extractors) {
    let key: string | undefined;
    try {
      key = product.extract(conn);
    } catch (err) {
      throw new PluginHookError(name, 'extract', err);
    }
    if (key) {
      conn.key = key;
      conn.keySource = name;
      return;
    }
  }
}
