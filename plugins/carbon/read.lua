-- read: read-only views (no writes, no emits).
--   ARGV 'inst' | 'acct', who | 'order', id |
--        'orders', who, n, walk position, carried ids ('id,id') |
--        'depth', levels | 'stats' |
--        'live', n, walk position, carried participants ('a|b') |
--        'offers', who ('': every open offer, for admins), n, walk
--        position, carried ids ('id,id') |
--        'outbox'
-- 'orders', 'offers' and 'live' are pages of a walk (see page() in
-- lib.lua): they end with {'C', next position, carried}; the walk is over
-- at '-' with nothing carried.  'live' (accounts, for reconcile) and
-- 'outbox' add {'N', outbox length, entries ever added to the outbox}.
begin()
local op = ARGV[1]

-- The outbox's length and how many entries it was ever given: reconcile
-- compares the latter before and after its reads to know whether anything
-- moved in between.  The host retires a settled, idle outbox stream and
-- keeps its count in '<outbox>:retired' ('<last id> <count>', for 30 days):
-- the stream made again goes on from that count, so it is the count of a
-- missing stream too.
local function outbox_rec()
  local k = P .. 'outbox'
  if redis.call('EXISTS', k) == 0 then
    local kept = redis.call('GET', k .. ':retired')
    return {'N', '0', kept and string.match(kept, ' (%d+)$') or '0'}
  end
  local x, len, added = redis.call('XINFO', 'STREAM', k), 0, 0
  for i = 1, #x - 1, 2 do
    if x[i] == 'length' then len = x[i + 1] end
    if x[i] == 'entries-added' then added = x[i + 1] end
  end
  return {'N', I(len), I(added)}
end

-- An order in flight as it stands between two steps of its call.
local function fl_rec(o, r)
  if r.cx and r.cx ~= '' then
    return ord_rec(o, STATE.CANCEL_PENDING, pending_why(r.cx))
  end
  return ord_rec(o, ord_state(o), 'in flight: matching continues')
end

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
  -- Resting, in flight or ended within ENDED_KEEP: Redis has the order's
  -- current state, whatever the settler's lag.  {}: ask the ledger.
  local id = ARGV[2]
  local o = ord_get(id)
  if o then
    local cx = redis.call('HGET', P .. 'hx', id) -- held by a FOK order
    if cx then return {ord_rec(o, STATE.CANCEL_PENDING, pending_why(cx, true))} end
    return {ord_rec(o, ord_state(o))}
  end
  local r
  o, r = fl_get(id)
  if o then return {fl_rec(o, r)} end
  local st, why
  o, st, why = ended_get(id)
  if o then return {ord_rec(o, st, why)} end
  -- An id this instrument issued (ids are its sequence, '%012x'): the order
  -- ended longer ago, and the ledger has it once settled.  {'U'}: no ledger
  -- row means not settled yet (UNAVAILABLE), not an order that never was.
  local n = string.match(id, '^%x+$') and tonumber(id, 16)
  if n and n >= 1 and
      n <= (tonumber(redis.call('HGET', KEYS[1], 'seq')) or 0) then
    return {{'U'}}
  end
  return {}
end
if op == 'orders' then
  local who, carry, out = ARGV[2], {}, {}
  for id in string.gmatch(ARGV[5], '[^,]+') do carry[#carry + 1] = id end
  local ids, pos, left = page(P .. 'op:' .. who, ARGV[4], carry,
    tonumber(ARGV[3]), false, op_id)
  for _, id in ipairs(ids) do
    local o = ord_get(id)
    -- A carried id may have ended since (or, from a made-up cursor, be
    -- someone else's order).
    if o and o.who == who then
      out[#out + 1] = ord_rec(o, ord_state(o))
    elseif not o then
      local r
      o, r = fl_get(id)
      if o and o.who == who then out[#out + 1] = fl_rec(o, r) end
    end
  end
  out[#out + 1] = {'C', pos, table.concat(left, ',')}
  return out
end
if op == 'offers' then
  -- Open offers to or from `who` (its index set), or every open offer
  -- (the offers hash itself) for an admin.
  local who, carry, out = ARGV[2], {}, {}
  for id in string.gmatch(ARGV[5], '[^,]+') do carry[#carry + 1] = id end
  local key = who == '' and P .. 'bk' or P .. 'bo:' .. who
  local ids, pos, left = page(key, ARGV[4], carry, tonumber(ARGV[3]),
    who == '')
  for _, id in ipairs(ids) do
    local b = offer_get(id)
    -- A carried id may have ended since (or, from a made-up cursor, be
    -- between others).
    if b and (who == '' or b.of == who or b.cp == who) then
      out[#out + 1] = offer_rec(b, OFFER.OPEN)
    end
  end
  out[#out + 1] = {'C', pos, table.concat(left, ',')}
  return out
end
if op == 'depth' then
  local n, out = tonumber(ARGV[2]), {}
  for _, s in ipairs({'b', 's'}) do
    local lv = redis.call('ZRANGE', P .. 'lv:' .. s, 0, n - 1)
    if #lv > 0 then
      local q = redis.call('HMGET', P .. 'lq:' .. s, unpack(lv))
      for i = 1, #lv do
        out[#out + 1] = R_LEVEL_rec('L', {side = s, px = lv[i], q = q[i] or '0'})
      end
    end
  end
  return out
end
if op == 'stats' then
  return {R_STATS_rec('S', {day = datestr(TODAY), last = I(inst.last),
    open = I(inst.open), high = I(inst.high), low = I(inst.low),
    vol = I(inst.vol), turn = I(inst.turn), ntr = I(inst.ntr),
    bvol = I(inst.bvol), ref = I(inst.ref),
    close = inst.cday == TODAY and I(inst.close) or '0'})}
end
if op == 'live' then
  local carry, out = {}, {}
  -- '|' cannot be part of a participant id.
  for w in string.gmatch(ARGV[4], '[^|]+') do carry[#carry + 1] = w end
  local whos, pos, left = page(P .. 'accts', ARGV[3], carry, tonumber(ARGV[2]))
  for _, who in ipairs(whos) do
    local a = acct(who)
    out[#out + 1] = R_HELD_rec('H', {who = who, cash = I(a.c + a.cf),
      alw = I(a.al + a.af + a.lk)})
  end
  out[#out + 1] = {'C', pos, table.concat(left, '|')}
  out[#out + 1] = outbox_rec()
  return out
end
if op == 'outbox' then return {outbox_rec()} end
return rej('INVALID_ARGUMENT', 'unknown read ' .. op)
