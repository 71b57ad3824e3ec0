-- read: read-only views (no writes, no emits).
--   ARGV 'inst' | 'acct', who | 'order', id | 'orders', who |
--        'depth', levels | 'stats' | 'live' (every account, for reconcile)
local op = ARGV[1]
local inst = inst_load()
if not inst then return inst_missing() end
if op == 'inst' then return {inst_rec(inst)} end
if op == 'acct' then
  local a = acct(ARGV[2])
  if a.new then
    return rej('NOT_FOUND', ARGV[2] .. ' has no account in ' .. inst.sym ..
      '; an admin opens one with account.deposit')
  end
  return {acct_rec(a)}
end
if op == 'order' then
  local o = ord_get(ARGV[2])
  if not o then return {} end
  return {ord_rec(o, ord_state(o))}
end
if op == 'orders' then
  local out = {}
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'op:' .. ARGV[2])) do
    local o = ord_get(id)
    if o then out[#out + 1] = ord_rec(o, ord_state(o)) end
  end
  return out
end
if op == 'depth' then
  local n, out = tonumber(ARGV[2]), {}
  for _, s in ipairs({'b', 's'}) do
    local lv = redis.call('ZRANGE', P .. 'lv:' .. s, 0, n - 1)
    if #lv > 0 then
      local q = redis.call('HMGET', P .. 'lq:' .. s, unpack(lv))
      for i = 1, #lv do out[#out + 1] = {'L', s, lv[i], q[i] or '0'} end
    end
  end
  return out
end
if op == 'stats' then
  return {{'S', datestr(TODAY), I(inst.last), I(inst.open), I(inst.high),
    I(inst.low), I(inst.vol), I(inst.turn), I(inst.ntr), I(inst.bvol),
    I(inst.ref), inst.cday == TODAY and I(inst.close) or '0'}}
end
if op == 'live' then
  local out = {}
  for _, who in ipairs(redis.call('SMEMBERS', P .. 'accts')) do
    local a = acct(who)
    out[#out + 1] = {'A', who, I(a.c + a.cf), I(a.al + a.af + a.lk)}
  end
  -- Entries still in the outbox are not settled yet.
  out[#out + 1] = {'N', I(redis.call('XLEN', P .. 'outbox'))}
  return out
end
return rej('INVALID_ARGUMENT', 'unknown read ' .. op)
