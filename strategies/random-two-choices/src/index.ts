import { randomTwoChoices } from './plugin.ts';

export { randomTwoChoices };
export { TwoChoices } from './two-choices.ts';
export type { Random } from './two-choices.ts';
export default randomTwoChoices;
