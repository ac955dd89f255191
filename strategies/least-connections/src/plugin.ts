import { defineStrategy, PLUGIN_API_VERSION, selected, ABSTAIN } from '@tether/core';
import { LeastConnections } from './least-connections.ts';

/**
 * The fewest active connections (divided by weight) wins. It answers for every client, keyed or
 * not, so it is the usual last strategy of a chain and the fallback for keyless clients.
 */
export const leastConnections = defineStrategy({
  name: 'least-connections',
  kind: 'strategy',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Fewest active connections per unit of weight; ties rotate.',
  create() {
    const picker = new LeastConnections();
    return {
      alwaysAnswers: true,
      select(_conn, backends) {
        const backend = picker.pick(backends);
        return backend ? selected(backend) : ABSTAIN;
      },
    };
  },
});
