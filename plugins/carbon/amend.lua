-- amend: cancel one order, or mass-cancel the caller's orders.
--   ARGV cancel: 'cancel', order id, admin 0|1 (an admin may cancel any order)
--   ARGV mass:   'mass', side b|s|'' (both), at most this many (bounded)
-- Cancels are accepted outside sessions and while halted: they only release.
-- Reply records as in place.lua; mass adds {'N', open orders left}.
local op, who = ARGV[1], gm.participant
local inst = inst_load()
if not inst then return inst_missing() end
local out = {}
if op == 'cancel' then
  local o = ord_get(ARGV[2])
  if not o or (o.who ~= who and ARGV[3] ~= '1') then
    -- A fill may have won the race: the order is gone from the book.
    return rej('NOT_FOUND', 'no open order ' .. inst.sym .. ':' .. ARGV[2] ..
      ' of yours (it may have filled or been cancelled; see order.get)')
  end
  ord_end(o, 4, 'cancelled by ' .. who, out)
  out[#out][1] = 'T'
else
  local side, max = ARGV[2], tonumber(ARGV[3])
  local ids = redis.call('SMEMBERS', P .. 'op:' .. who)
  local n, left = 0, 0
  for _, id in ipairs(ids) do
    local o = ord_get(id)
    if o and (side == '' or o.side == side) then
      if n < max then
        ord_end(o, 4, 'mass cancel', out)
        n = n + 1
      else
        left = left + 1
      end
    end
  end
  out[#out + 1] = {'N', I(left)}
end
acct_flush()
levels_out(out)
return out
