// The Lua scripts of SessionStore's corral layout (docs/sessions.md,
// "Operations"): the operations that must branch on what Redis holds.
// Load and Increment are pipelines instead (session_store.cc says why).
#ifndef CORRAL_WORKER_SDK_SESSION_SCRIPTS_H_
#define CORRAL_WORKER_SDK_SESSION_SCRIPTS_H_

namespace corral::worker {

// The scripts read Redis' clock (TIME); Redis 7 replicates scripts by
// effect, so TIME before a write is allowed. A script's `false` reaches us
// as nil: no such session.

// KEYS[1] session; ARGV[1] idle seconds, ARGV[2] absolute seconds,
// ARGV[3..] field, value pairs. 0 when the key exists (an id collision).
inline constexpr char kCreateScript[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = tonumber(redis.call('TIME')[1])
local exp = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], '_created', now, '_expires', exp,
           unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], math.min(tonumber(ARGV[1]), tonumber(ARGV[2])))
return {now, exp}
)lua";

// KEYS[1] session; ARGV[1] idle seconds, ARGV[2..] field, value pairs.
inline constexpr char kSetScript[] = R"lua(
local exp = redis.call('HGET', KEYS[1], '_expires')
if not exp then return 0 end
local left = tonumber(exp) - tonumber(redis.call('TIME')[1])
if left <= 0 then redis.call('DEL', KEYS[1]) return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], math.min(tonumber(ARGV[1]), left))
return 1
)lua";

// KEYS[1] session, KEYS[2] its new key. 1 moved, 0 no such session (or an
// ended one, or a stray key: see above), -1 the new key is taken.
inline constexpr char kRotateScript[] = R"lua(
local exp = redis.call('HGET', KEYS[1], '_expires')
if not exp then return 0 end
if tonumber(exp) <= tonumber(redis.call('TIME')[1]) then
  redis.call('DEL', KEYS[1])
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
)lua";

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_SESSION_SCRIPTS_H_
