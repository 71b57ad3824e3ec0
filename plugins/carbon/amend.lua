-- amend: cancel one order, or mass-cancel the caller's orders.
--   ARGV cancel: 'cancel', order id, admin 0|1 (an admin may cancel any order)
--   ARGV mass:   'mass', side b|s|'' (both), at most this many, walk
--                position, carried ids ('id,id'): see page() in lib.lua
-- Cancels are accepted outside sessions and while halted: they only release.
-- Reply records as in place.lua; mass adds {'N', remaining, position,
-- carried ids} (the walk is over at position '-' with nothing carried).
begin()
local op, who = ARGV[1], gm.participant

local inst = inst_load()
if not inst then return inst_missing() end
local out = {}

-- A cancel of an order in flight (its record r in P.fl, matching over
-- later steps of the call that placed it, place.lua) wins: it is marked,
-- and the next step of that call (or of its retry, or of its in-flight
-- deadline) stops matching before any fill and cancels the remainder.
-- Until then the order is CANCEL_PENDING and no longer counts as open.  A
-- FOK order executing what it holds cannot be cancelled: it fills in full
-- in its next steps (nil is returned).
local function cancel_inflight(o, r, tag)
  if r.fk == 'x' then return nil end
  if not r.cx or r.cx == '' then
    r.cx = who
    redis.call('HSET', P .. 'fl', o.id, cjson.encode(r))
    op_rem(o.who, o.id)
  end
  return ord_rec(o, STATE.CANCEL_PENDING, pending_why(r.cx), tag)
end
-- A cancel of a resting order a FOK order holds (ord_end refused it) waits
-- for that order: it fills it, or gives it back and the cancel ends it.
local function cancel_held(o, tag)
  local cx = redis.call('HGET', P .. 'hx', o.id)
  if not cx then
    cx = who
    redis.call('HSET', P .. 'hx', o.id, who)
    op_rem(o.who, o.id)
  end
  return ord_rec(o, STATE.CANCEL_PENDING, pending_why(cx, true), tag)
end

if op == 'cancel' then
  local o = ord_get(ARGV[2])
  if not o then
    -- Not resting: it may be in flight.
    local f, r = fl_get(ARGV[2])
    if f and (f.who == who or ARGV[3] == '1') then
      local rec = cancel_inflight(f, r, 'T')
      if not rec then
        return rej('FAILED_PRECONDITION', 'order ' .. inst.sym .. ':' ..
          ARGV[2] .. ' is a FOK order executing what it holds: it fills ' ..
          'in full in its next steps, so there is nothing to cancel')
      end
      return {rec}
    end
    -- A fill may have won the race: the order is gone from the book.
    return rej('NOT_FOUND', 'no open order ' .. inst.sym .. ':' .. ARGV[2] ..
      ' of yours (it may have filled, been cancelled, or been replaced by ' ..
      'a new order id; see order.get)')
  end
  if o.who ~= who and ARGV[3] ~= '1' then
    return rej('NOT_FOUND', 'no open order ' .. inst.sym .. ':' .. ARGV[2] ..
      ' of yours (it may have filled, been cancelled, or been replaced by ' ..
      'a new order id; see order.get)')
  end
  if ord_end(o, STATE.CANCELLED, 'cancelled by ' .. who, out) then
    out[#out] = rec_tag(out[#out], 'T')
  else
    out[#out + 1] = cancel_held(o, 'T')
  end
else
  -- Each run looks at no more than max of the caller's open orders, of
  -- either side: a side filter cannot make a run read the whole set.
  local side, max, key = ARGV[2], tonumber(ARGV[3]), P .. 'op:' .. who
  local carry = {}
  for id in string.gmatch(ARGV[5], '[^,]+') do carry[#carry + 1] = id end
  local ids, pos, left = page(key, ARGV[4], carry, max, false, op_id)
  for _, id in ipairs(ids) do
    local o = ord_get(id)
    if o then
      -- ord_end refuses an order a FOK order holds: its cancel waits.
      if o.who == who and (side == '' or o.side == side) and
          not ord_end(o, STATE.CANCELLED, 'mass cancel', out) then
        out[#out + 1] = cancel_held(o, 'O')
      end
    else
      local f, r = fl_get(id)
      if f then
        if f.who == who and (side == '' or f.side == side) then
          out[#out + 1] = cancel_inflight(f, r, 'O')
        end
      else
        -- Neither resting nor in flight: a carried id that ended since.
        -- The SREM keeps a member without an order (only a bug leaves
        -- one) from counting in remaining for ever.
        op_rem(who, id)
      end
    end
  end
  -- Without a side every order looked at is gone (or pending: no longer
  -- in the set), so the set holds exactly what is left, but a FOK order
  -- executing.  With one, the orders of that side among the rest are not
  -- known without reading them: the set's size bounds them until the walk
  -- is over.
  local remaining = 0
  if side == '' or pos ~= '-' or #left > 0 then
    remaining = redis.call('SCARD', key)
  end
  out[#out + 1] = {'N', I(remaining), pos, table.concat(left, ',')}
end
acct_flush()
ev_flush()
ended_flush()
levels_out(out)
return out
