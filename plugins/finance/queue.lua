-- queue: one bank's queue, under the bank's tag ("b:<bank>"): the
-- referrals it may claim, has claimed, or holds.  An index kept by the
-- callers of referral.lua (index.c); the referral's own record is the
-- truth, and each entry carries the referral version that wrote it, so a
-- late step of an older call changes nothing.
-- Keys (P = "gm:{finance:b:<bank>}:"):
--   P.q   ZSET referral ids by the referral's creation ms
--   P.qs  HASH id -> the entry as index.c writes it ("relation|...")
--   P.qv  HASH id -> the version that wrote or removed the entry
--   P.qt  ZSET removed ids by the ms of removal: their P.qv version stays
--         two days (beyond the host's idempotency TTL, so no retry can
--         bring an older step back), then both go
-- ARGV 'put', id, version, score, entry | 'del', id, version
--      | 'list', offset, limit -> {total, {id, entry}...}
local op = ARGV[1]
if op == 'list' then
  local off, lim = tonumber(ARGV[2]), tonumber(ARGV[3])
  local ids = redis.call('ZRANGE', P .. 'q', off, off + lim - 1)
  local out = {redis.call('ZCARD', P .. 'q')}
  if #ids > 0 then
    local es = redis.call('HMGET', P .. 'qs', unpack(ids))
    for i = 1, #ids do out[#out + 1] = {ids[i], es[i] or ''} end
  end
  return out
end

local id, v = ARGV[2], tonumber(ARGV[3])
local have = tonumber(redis.call('HGET', P .. 'qv', id) or '0')
if v <= have then return 0 end
-- Forget removals older than two days: at most 16 per call.
local old = redis.call('ZRANGEBYSCORE', P .. 'qt', '-inf', NOW - 172800000,
  'LIMIT', 0, 16)
for i = 1, #old do
  redis.call('HDEL', P .. 'qv', old[i])
  redis.call('ZREM', P .. 'qt', old[i])
end
redis.call('HSET', P .. 'qv', id, I(v))
if op == 'put' then
  redis.call('ZADD', P .. 'q', tonumber(ARGV[4]), id)
  redis.call('HSET', P .. 'qs', id, ARGV[5])
  redis.call('ZREM', P .. 'qt', id)
else
  redis.call('ZREM', P .. 'q', id)
  redis.call('HDEL', P .. 'qs', id)
  redis.call('ZADD', P .. 'qt', NOW, id)
end
return 1
