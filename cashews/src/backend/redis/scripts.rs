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

/// `expire` with no TTL: PERSIST, answering whether the key exists (PERSIST alone answers 0
/// for a key that has no TTL). Returns 1 when the key exists, else 0.
///
/// KEYS[1] = key.
pub(super) static PERSIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PERSIST', KEYS[1])
  return 1
end
return 0
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

/// The step both sliding-window scripts end with, given `key`, `start`, `stop` (instants as
/// strings), `max` and `ttl`: forget, count, record below `max`, return the count.
///
/// Forgetting every event deletes the sorted set, and the event recorded next would create a
/// new one without the window's TTL: with no TTL given, the TTL read before is put back, so a
/// window keeps its TTL as on the other backends.
macro_rules! window_step {
    () => {
        r"
local kept = redis.call('PTTL', key)
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. start)
local count = redis.call('ZCOUNT', key, start, stop)
if count < max then
  local same = redis.call('ZCOUNT', key, stop, stop)
  redis.call('ZADD', key, stop, stop .. ':' .. same)
  count = count + 1
  if ttl > 0 then
    redis.call('PEXPIRE', key, ttl)
  elseif kept > 0 then
    redis.call('PEXPIRE', key, kept)
  end
end
return count
"
    };
}

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
    Script::new(concat!(
        r"
local key, start, stop = KEYS[1], ARGV[1], ARGV[2]
local max, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
",
        window_step!()
    ))
});

/// `slice_incr_now`: [`SLICE_INCR`] over the window `(now − period, now]`, where `now` is the
/// server's `TIME` in milliseconds, read inside the script. Scripts run one at a time, so the
/// stamps are taken in the order the events are recorded, on one clock for every process:
/// no call can count a window that misses an earlier event. (`TIME` in a script is allowed
/// since Redis 5 with effects replication, the only mode of Redis 7; one key, so it runs on a
/// cluster.) Returns the count.
///
/// The server's clock may step back (NTP): the stamp is never before the newest event, or the
/// window would miss it.
///
/// Instants are formatted with `%.0f`: Lua numbers are doubles, exact for millisecond Unix
/// times, and the default number format could switch to exponent notation.
///
/// KEYS[1] = key; ARGV = period in milliseconds (at least 1), max, TTL in milliseconds (0:
/// keep the TTL).
pub(super) static SLICE_INCR_NOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        r"
local key = KEYS[1]
local period, max, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
if newest and tonumber(newest) > now then
  now = tonumber(newest)
end
local stop = string.format('%.0f', now)
local start = string.format('%.0f', math.max(now + 1 - period, 0))
",
        window_step!()
    ))
});
