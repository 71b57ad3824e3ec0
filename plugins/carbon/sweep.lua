-- sweep: expiry and the end of day; run by the timer and records.close.
-- Naturally idempotent (expiring what is due, closing a day once), so the
-- caller may run it again and again within one call.
--   ARGV 'expire', at most this many: expires due orders (DAY at the day's
--        close, GTD at expire_ms) and block offers.  Reply: records as in
--        place.lua and {'N', expired, more 0|1}.
--   ARGV 'close': closes the latest trading day whose close time has passed,
--        once.  Reply {'C', day, close, volume, from trades 0|1, already 0|1}
--        or {'W', due} when expiries of that day are still due (expire
--        first).  Close = VWAP of the day's listing trades, rounded half up
--        to the fen; no trades: the previous close.  It becomes the
--        reference price of the next day.
local op = ARGV[1]
local inst = inst_load()
if not inst then return inst_missing() end
local out = {}
if op == 'expire' then
  local max = tonumber(ARGV[2])
  local due = redis.call('ZRANGEBYSCORE', P .. 'x', '-inf', NOW, 'LIMIT', 0, max + 1)
  local n = 0
  for i = 1, math.min(#due, max) do
    local id = due[i]
    if string.sub(id, 1, 1) == 'B' then
      local rec = redis.call('HGET', P .. 'bk', id)
      local of, cp, s, px, q, t = string.match(rec or '',
        '^(.*)|(.*)|(%a)|(%d+)|(%d+)|(%d+)$')
      if of then
        local a = acct(of)
        px, q = tonumber(px), tonumber(q)
        if s == 'b' then a.cf, a.c = a.cf - px * q, a.c + px * q
        else a.af, a.al = a.af - q, a.al + q end
        redis.call('HDEL', P .. 'bk', id)
        gm.emit('offer', 'id', id, 'offerer', of, 'cp', cp, 'side', s,
          'px', I(px), 'qty', I(q), 'st', '5', 'trade', '', 't', I(NOW))
      end
      redis.call('ZREM', P .. 'x', id)
    else
      local o = ord_get(id)
      if o then ord_end(o, 5, 'expired', out)
      else redis.call('ZREM', P .. 'x', id) end
    end
    n = n + 1
  end
  acct_flush()
  levels_out(out)
  out[#out + 1] = {'N', I(n), #due > max and '1' or '0'}
  return out
end
-- close
local day = nil
for i = 0, 30 do
  local d = TODAY - i
  if d < lday(inst.ct) then break end -- no day before the instrument existed
  if trading_day(inst, d) and close_ms(inst.sess, d) <= NOW then
    day = d
    break
  end
end
if not day then return {} end
if inst.cday >= day then
  return {{'C', datestr(day), I(inst.close), '0', '0', '1'}}
end
local cms = close_ms(inst.sess, day)
local due = redis.call('ZCOUNT', P .. 'x', '-inf', cms)
if due > 0 then return {{'W', I(due)}} end
local raw = redis.call('HMGET', KEYS[1], 'sday', 'vol', 'turn')
local vol, turn = tonumber(raw[2]) or 0, tonumber(raw[3]) or 0
local close, from = inst.ref, '0'
if tonumber(raw[1]) == day and vol > 0 then
  close, from = floor((2 * turn + vol) / (2 * vol)), '1'
else
  vol, turn = 0, 0
end
redis.call('HSET', KEYS[1], 'ref', I(close), 'cday', I(day), 'close', I(close))
gm.emit('close', 'day', I(day), 'close', I(close), 'vol', I(vol),
  'turn', I(turn), 'from', from, 't', I(NOW))
return {{'C', datestr(day), I(close), I(vol), from, '0'}}
