/**
 * The Lua scripts the Redis store runs. Each touches one key (KEYS[1]), so each runs on the node
 * that holds that key in a Cluster, and each is atomic: no other client's command runs in between,
 * which is what makes "first writer wins" hold between Tether instances.
 *
 * Replies use Lua `false`, which Redis sends as a null reply.
 */

/**
 * The claim, for servers where `SET key value NX GET PX ms` is refused (before Redis 7.0: NX and
 * GET could not be combined; some forks): the same in one round trip. ARGV: backend, ttl (ms;
 * 0 = no expiry). Returns the backend already stored (the claim lost), or null (this one won).
 */
export const CLAIM_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if v then return v end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return false`;

/**
 * Compare-and-set for a redispatch: the key's backend is unavailable here, so move it to the one
 * chosen instead, but only if it still holds the backend that was read (another instance may have
 * moved it a moment ago: then that move stands and its backend is returned). A missing key is
 * claimed. ARGV: expected, new backend, ttl (ms). Returns null when the key now holds the new
 * backend, else the backend it holds.
 */
export const MOVE_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return v end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return false`;

/** Operator `clear` of one backend's entries: delete the key only if it still holds that backend. ARGV: backend. */
export const DELETE_IF_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
