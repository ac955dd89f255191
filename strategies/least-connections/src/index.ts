import { leastConnections } from './plugin.ts';

export { leastConnections };
export { LeastConnections } from './least-connections.ts';
export default leastConnections;
