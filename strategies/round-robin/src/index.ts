import { roundRobin } from './plugin.ts';

export { roundRobin };
export { RoundRobin } from './round-robin.ts';
export default roundRobin;
