import { ABSTAIN, defineStrategy, PLUGIN_API_VERSION, selected } from '@tether/core';
import { TwoChoices } from './two-choices.ts';

/** Power of two choices on live connections: a cheap, herd-free alternative to least-connections. */
export const randomTwoChoices = defineStrategy({
  name: 'random-two-choices',
  kind: 'strategy',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Two weighted random candidates; the one with fewer connections per weight wins.',
  create() {
    const picker = new TwoChoices();
    return {
      alwaysAnswers: true,
      select(_conn, backends) {
        const backend = picker.pick(backends);
        return backend ? selected(backend) : ABSTAIN;
      },
    };
  },
});
