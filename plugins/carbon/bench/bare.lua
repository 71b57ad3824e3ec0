-- bare: the least work a Redis price-time match can do, the baseline the
-- carbon bench measures the place/amend scripts against (compare.c).  No
-- balances, no rules, no idempotency record, no outbox, no self-trade
-- prevention, no bound on fills: only the book.  Never used by gmd.
--
-- Keys, all under the instrument's hash tag {bare:<SYM>}:
--   KEYS[1] ZSET bids, score -price;  KEYS[2] ZSET asks, score +price.
--           Equal scores sort by member, the fixed-width id = arrival: that
--           is the time priority (as carbon's P.bz:b/s).
--   KEYS[3] HASH id -> "who|side|price|remaining"; field '#' the id counter.
-- ARGV place:  'p', side b|s, price, qty, who, ioc 0|1 (1: the remainder is
--              dropped, never rests)
-- ARGV cancel: 'c', id, who
-- Reply: {id, state, remaining, then maker id, price, qty per fill}; state
-- 'R' rested, 'F' filled, 'X' IOC remainder dropped, 'C' cancelled.  A
-- cancel of an order not resting (or not the caller's) is NOT_FOUND.
local O = KEYS[3]
if ARGV[1] == 'c' then
  local rec = redis.call('HGET', O, ARGV[2])
  local who, side
  if rec then who, side = string.match(rec, '^([^|]*)|(%a)|') end
  if who ~= ARGV[3] then return redis.error_reply('NOT_FOUND ' .. ARGV[2]) end
  redis.call('ZREM', side == 'b' and KEYS[1] or KEYS[2], ARGV[2])
  redis.call('HDEL', O, ARGV[2])
  return {ARGV[2], 'C', 0}
end

local side, px, q, who = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local buy = side == 'b'
local opp = buy and KEYS[2] or KEYS[1]
local id = string.format('%012x', redis.call('HINCRBY', O, '#', 1))
local out = {id, 'F', 0}
while q > 0 do
  local top = redis.call('ZRANGE', opp, 0, 0, 'WITHSCORES')
  if #top == 0 then break end
  local rpx = math.abs(tonumber(top[2]))
  if (buy and rpx > px) or (not buy and rpx < px) then break end
  local rec = redis.call('HGET', O, top[1])
  local head, rq = string.match(rec, '^(.*|)(%d+)$')
  rq = tonumber(rq)
  local f = math.min(q, rq)
  q, rq = q - f, rq - f
  if rq == 0 then
    redis.call('ZREM', opp, top[1])
    redis.call('HDEL', O, top[1])
  else
    redis.call('HSET', O, top[1], head .. string.format('%d', rq))
  end
  out[#out + 1] = top[1]
  out[#out + 1] = rpx
  out[#out + 1] = f
end
if q > 0 then
  if ARGV[6] == '1' then
    out[2] = 'X'
  else
    local p = string.format('%d', px)
    redis.call('ZADD', buy and KEYS[1] or KEYS[2], buy and -px or px, id)
    redis.call('HSET', O, id, who .. '|' .. side .. '|' .. p .. '|' ..
      string.format('%d', q))
    out[2] = 'R'
  end
  out[3] = q
end
return out
