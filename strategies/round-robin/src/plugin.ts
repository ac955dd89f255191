import { ABSTAIN, defineStrategy, PLUGIN_API_VERSION, selected } from '@tether/core';
import { RoundRobin } from './round-robin.ts';

/** Each backend in turn, in proportion to its weight: the simplest baseline to compare against. */
export const roundRobin = defineStrategy({
  name: 'round-robin',
  kind: 'strategy',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Smooth weighted round-robin over the available backends.',
  create() {
    const rr = new RoundRobin();
    return {
      alwaysAnswers: true,
      select(_conn, backends) {
        const backend = rr.pick(backends);
        return backend ? selected(backend) : ABSTAIN;
      },
    };
  },
});
