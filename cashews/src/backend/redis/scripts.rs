//! The Lua scripts of the Redis backend: each runs atomically on the server, touches one key,
//! and is sent by SHA (`EVALSHA`, loaded once on a `NOSCRIPT` reply).

use std::sync::LazyLock;

use redis::Script;

/// `incr` with a TTL: INCRBY, and PEXPIRE only when this call created the key. Returns the new
/// value as decimal text read back with GET, because Lua numbers are doubles and would round
/// values beyond 2^53.
///
/// KEYS[1] = key; ARGV[1] = by; ARGV[2] = TTL in milliseconds.
pub(super) static INCR_WITH_TTL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local created = redis.call('EXISTS', KEYS[1]) == 0
redis.call('INCRBY', KEYS[1], ARGV[1])
if created then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('GET', KEYS[1])
",
    )
});

/// The pub/sub channel `unlock` announces releases on (the stored key, with any key prefix),
/// so waiters in other processes wake at once (see `releases.rs`).
pub(super) const RELEASED_CHANNEL: &str = "cashews:lock-released";

/// `unlock`: delete the key only if it holds the token, and then publish the key on
/// [`RELEASED_CHANNEL`]. Returns 1 when deleted, else 0.
///
/// KEYS[1] = key; ARGV[1] = token.
pub(super) static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
if redis.call('TYPE', KEYS[1])['ok'] == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  local deleted = redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', '{RELEASED_CHANNEL}', KEYS[1])
  return deleted
end
return 0
"
    ))
});

/// `slice_incr`: an exact sliding window over a sorted set whose scores are event instants.
/// Forgets events before `start`, counts those in `[start, end]`, and below `max` records one
/// more at `end` (then resets the TTL when one is given). Returns the count.
///
/// Members are unique: `end:n`, where `n` is the number of events already at `end`. Events are
/// only ever removed by score ranges, so every member at one score is removed together and the
/// counter never reuses a live member: events sharing an instant are all counted.
///
/// KEYS[1] = key; ARGV = start, end, max, TTL in milliseconds (0: keep the TTL).
pub(super) static SLICE_INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key, start, stop = KEYS[1], ARGV[1], ARGV[2]
local max, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. start)
local count = redis.call('ZCOUNT', key, start, stop)
if count < max then
  local same = redis.call('ZCOUNT', key, stop, stop)
  redis.call('ZADD', key, stop, stop .. ':' .. same)
  count = count + 1
  if ttl > 0 then
    redis.call('PEXPIRE', key, ttl)
  end
end
return count
",
    )
});
