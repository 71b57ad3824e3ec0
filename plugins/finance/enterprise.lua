-- enterprise: one enterprise's profile and the list of its referrals,
-- under "e:<participant>".
-- Keys (P = "gm:{finance:e:<participant>}:"):
--   P.p  HASH who (the participant), uscc, name, region, size, contact,
--        rt (registered ms)
--   P.r  ZSET its referral ids by creation ms (written by index.c after
--        the referral exists)
--   P.lost HASH credit code -> the ms of this participant's claim of it
--        that another registration took over (dir.lua uscc_take) while
--        the profile did not hold the code: a registration under that
--        claim (a retry replaying it) writes nothing
-- ARGV 'register', participant, uscc, name, region, size, contact, the
--        ms of the claim of uscc it holds ('' none given)
--      | 'get' | 'code' -> the credit code in the profile ('' without one)
--      | 'uscc_fence', code, claim ms -> {'held'} when the profile holds
--        the code, else {'fenced'}, the claim of that ms set in P.lost
--      | 'add', id, ms | 'list', offset, limit -> {total, ids...}
--      | 'first', n -> {total, id, ms, id, ms...} (the first n, by creation)
--      | 'unlist', id: an archived referral leaves the list (archive.c;
--        run by enterprise.free over maxmemory: it only frees)
-- An archived referral is listed from the ledger (referral.c).
local op = ARGV[1]
if op == 'register' then
  local claim = ARGV[8] or ''
  local lost = redis.call('HGET', P .. 'lost', ARGV[3])
  if lost and lost == claim then
    return rej('ALREADY_EXISTS', 'unified social credit code ' .. ARGV[3] ..
      ' went to another registration while this one was unfinished (its ' ..
      'claim was over a minute old and this profile did not hold the ' ..
      'code): nothing was written; register again with a new ' ..
      'idempotency key (refused if the code is another participant\'s)')
  end
  if lost and claim ~= '' then redis.call('HDEL', P .. 'lost', ARGV[3]) end
  local rt = redis.call('HGET', P .. 'p', 'rt') or I(NOW)
  redis.call('HSET', P .. 'p', 'who', ARGV[2], 'uscc', ARGV[3],
    'name', ARGV[4], 'region', ARGV[5], 'size', ARGV[6], 'contact', ARGV[7],
    'rt', rt)
  gm.emit('enterprise', 'who', ARGV[2], 'uscc', ARGV[3], 'name', ARGV[4],
    'region', ARGV[5], 'size', ARGV[6], 'contact', ARGV[7], 'rt', rt,
    't', I(NOW))
  return redis.call('HGETALL', P .. 'p')
end
if op == 'code' then
  return redis.call('HGET', P .. 'p', 'uscc') or ''
end
if op == 'uscc_fence' then
  if redis.call('HGET', P .. 'p', 'uscc') == ARGV[2] then return {'held'} end
  redis.call('HSET', P .. 'lost', ARGV[2], ARGV[3])
  return {'fenced'}
end
if op == 'get' then
  local p = redis.call('HGETALL', P .. 'p')
  if #p == 0 then
    return rej('NOT_FOUND', 'enterprise ' ..
      string.match(P, '{finance:e:(.*)}') .. ' has no profile; register ' ..
      'it first: gm finance enterprise register --code CODE --name NAME ' ..
      '--region CODE --size SIZE --contact TEXT')
  end
  return p
end
if op == 'add' then
  redis.call('ZADD', P .. 'r', 'NX', tonumber(ARGV[3]), ARGV[2])
  return 1
end
if op == 'unlist' then
  return redis.call('ZREM', P .. 'r', ARGV[2])
end
if op == 'first' then
  local out = {redis.call('ZCARD', P .. 'r')}
  local n = tonumber(ARGV[2])
  if n > 0 then
    for _, x in ipairs(redis.call('ZRANGE', P .. 'r', 0, n - 1,
                                  'WITHSCORES')) do
      out[#out + 1] = x
    end
  end
  return out
end
local off, lim = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {redis.call('ZCARD', P .. 'r')}
for _, id in ipairs(redis.call('ZRANGE', P .. 'r', off, off + lim - 1)) do
  out[#out + 1] = id
end
return out
