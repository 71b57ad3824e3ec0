-- amend: cancel one order, or mass-cancel the caller's orders.
--   ARGV cancel: 'cancel', order id, admin 0|1 (an admin may cancel any order)
--   ARGV mass:   'mass', side b|s|'' (both), at most this many, walk
--                position, carried ids ('id,id'): see page() in lib.lua
-- Cancels are accepted outside sessions and while halted: they only release.
-- Reply records as in place.lua; mass adds {'N', remaining, position,
-- carried ids} (the walk is over at position '-' with nothing carried).
local op, who = ARGV[1], gm.participant

local inst = inst_load()
if not inst then return inst_missing() end
local out = {}
if op == 'cancel' then
  local o = ord_get(ARGV[2])
  if not o then
    -- Not resting: it may be in flight, matching over later steps of the
    -- call that placed it (place.lua).  The cancel wins: it is marked, and
    -- the next step of that call (or of its retry, or the sweep's) stops
    -- matching before any fill and cancels the remainder.  Until then the
    -- order is CANCEL_PENDING.
    local raw = redis.call('HGET', P .. 'fl', ARGV[2])
    local r = raw and cjson.decode(raw)
    if r and (r.who == who or ARGV[3] == '1') then
      if not r.cx or r.cx == '' then
        r.cx = who
        redis.call('HSET', P .. 'fl', ARGV[2], cjson.encode(r))
      end
      local f = {id = ARGV[2], who = r.who, side = r.side, typ = r.typ,
        tif = tonumber(r.tif), px = tonumber(r.px), q = tonumber(r.q),
        f = tonumber(r.f), exp = tonumber(r.exp), t = tonumber(r.t),
        coid = r.coid}
      local r0 = ord_rec(f, STATE.CANCEL_PENDING, 'cancel pending: ' ..
        'requested by ' .. r.cx .. '; the order is still matching and its ' ..
        'next step cancels the rest')
      r0[1] = 'T'
      return {r0}
    end
    -- A fill may have won the race: the order is gone from the book.
    return rej('NOT_FOUND', 'no open order ' .. inst.sym .. ':' .. ARGV[2] ..
      ' of yours (it may have filled or been cancelled; see order.get)')
  end
  if o.who ~= who and ARGV[3] ~= '1' then
    return rej('NOT_FOUND', 'no open order ' .. inst.sym .. ':' .. ARGV[2] ..
      ' of yours (it may have filled or been cancelled; see order.get)')
  end
  ord_end(o, STATE.CANCELLED, 'cancelled by ' .. who, out)
  out[#out][1] = 'T'
else
  -- Each run looks at no more than max of the caller's open orders, of
  -- either side: a side filter cannot make a run read the whole set.
  local side, max, key = ARGV[2], tonumber(ARGV[3]), P .. 'op:' .. who
  local carry = {}
  for id in string.gmatch(ARGV[5], '[^,]+') do carry[#carry + 1] = id end
  local ids, pos, left = page(key, ARGV[4], carry, max)
  for _, id in ipairs(ids) do
    local o = ord_get(id)
    if not o then
      -- Not resting: a carried id that filled or was cancelled since.  The
      -- SREM keeps a member without an order (only a bug leaves one) from
      -- counting in remaining for ever.
      redis.call('SREM', key, id)
    elseif o.who == who and (side == '' or o.side == side) then
      ord_end(o, STATE.CANCELLED, 'mass cancel', out)
    end
  end
  -- Without a side every order looked at is gone, so the set holds exactly
  -- what is left.  With one, the orders of that side among the rest are not
  -- known without reading them: the set's size bounds them until the walk
  -- is over.
  local remaining = 0
  if side == '' or pos ~= '-' or #left > 0 then
    remaining = redis.call('SCARD', key)
  end
  out[#out + 1] = {'N', I(remaining), pos, table.concat(left, ',')}
end
acct_flush()
ended_flush()
levels_out(out)
return out
