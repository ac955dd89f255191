import type { ConnInfo } from '../plugin.ts';

/**
 * What a broker's CONNACK says about stickiness. `miss`: the client asked to resume its session,
 * was sent to the backend its key remembers, and the broker accepted it without a session
 * (session present 0): the broker lost the session (restart, expiry) or the route is wrong.
 * `hit`: the same, with the session there. `unchecked`: nothing to judge (no remembered backend,
 * a client that asked for a clean session, or a refusal).
 */
export type StickinessVerdict = 'hit' | 'miss' | 'unchecked';

/**
 * A client asks to resume when it keeps a session (`persistentSession`: 3.1.x clean session 0,
 * MQTT 5 session expiry above 0) and does not ask for a fresh one (clean start 0 under MQTT 5,
 * where a persistent client may still start clean and then rightly gets session present 0).
 */
export function stickiness(conn: ConnInfo, remembered: boolean, code: number, sessionPresent: boolean): StickinessVerdict {
  if (!remembered || code !== 0 || !conn.persistentSession || conn.connect.clean !== false) return 'unchecked';
  return sessionPresent ? 'hit' : 'miss';
}
