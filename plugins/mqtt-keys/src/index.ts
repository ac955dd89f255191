import { clientId } from './client-id.ts';
import { username } from './username.ts';

export { clientId, username };
export default [clientId, username];
