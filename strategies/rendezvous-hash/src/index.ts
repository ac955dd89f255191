import { rendezvousHash } from './plugin.ts';

export { rendezvousHash };
export { Rendezvous } from './rendezvous.ts';
export type { Hash32 } from './rendezvous.ts';
export default rendezvousHash;
