import { ABSTAIN, defineStrategy, PLUGIN_API_VERSION, selected } from '@tether/core';
import xxhash from 'xxhash-wasm';
import { Rendezvous } from './rendezvous.ts';

/**
 * Sticky without a table: the key decides the backend through weighted rendezvous hashing, the
 * same in every process and after restarts. Keyless clients are passed on to the next strategy.
 */
export const rendezvousHash = defineStrategy({
  name: 'rendezvous-hash',
  kind: 'strategy',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Weighted rendezvous (HRW) hashing of the key over the available backends (xxHash32).',
  async create() {
    const { h32 } = await xxhash();
    const hrw = new Rendezvous(h32);
    return {
      select(conn, backends) {
        if (!conn.key) return ABSTAIN;
        const backend = hrw.pick(conn.key, backends);
        return backend ? selected(backend) : ABSTAIN;
      },
    };
  },
});
