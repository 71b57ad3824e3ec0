-- sweep: expiry and the end of day; run by the instrument's day deadline
-- (day.c) and records.close.  Naturally idempotent (expiring what is due,
-- closing a day once), so the caller may run it again and again within one
-- call.  Every run sets the day deadline to the next event (day_arm), so a
-- run that leaves work due has it fire again.
--   ARGV 'expire', at most this many[, up to this ms]: expires due orders
--        (DAY at the day's close, GTD at expire_ms) and block offers, due
--        by now (or by the given ms, if earlier), and forgets final records
--        of in-flight orders older than a day (P.fd).  Reply: records as in
--        place.lua, {'B', offer...} per expired offer (as block.lua) and
--        {'N', expired, more 0|1}.
--   ARGV 'close': closes the oldest trading day not closed yet whose close
--        time has passed: days are closed one by one, in order, so days
--        missed while no broker ran are each closed in turn.  Reply {'C',
--        day, close, volume, from trades 0|1, already 0|1, more 0|1} (more:
--        a later day is due too, run 'close' again), or {'X'} while a FOK
--        order executes what it holds (P.fx: the close waits), or {'W', due, close
--        ms} when expiries due by that day's close are still pending
--        (expire up to that ms first), or the latest closed day with
--        already = 1 and its volume and basis as closed when none is due,
--        or {} before the first close.
--        Close = VWAP of the day's listing trades, rounded half up to the
--        fen; no trades: the previous close.  It becomes the reference
--        price of the next day.
begin()
local op = ARGV[1]
local inst = inst_load()
if not inst then return inst_missing() end
local out = {}
if op == 'expire' then
  local max, upto = tonumber(ARGV[2]), NOW
  if ARGV[3] and tonumber(ARGV[3]) < NOW then upto = tonumber(ARGV[3]) end
  local due = redis.call('ZRANGEBYSCORE', P .. 'x', '-inf', upto, 'LIMIT', 0,
    max + 1)
  local n = 0
  for i = 1, math.min(#due, max) do
    local id = due[i]
    if string.sub(id, 1, 1) == 'B' then
      local b = offer_get(id)
      if b then
        local a = acct(b.of)
        if b.side == 'b' then a.cf, a.c = a.cf - b.px * b.q, a.c + b.px * b.q
        else a.af, a.al = a.af - b.q, a.al + b.q end
        offer_remove(b)
        offer_emit(b, OFFER.EXPIRED)
        out[#out + 1] = offer_rec(b, OFFER.EXPIRED)
      end
      redis.call('ZREM', P .. 'x', id)
    else
      local o = ord_get(id)
      if o then ord_end(o, STATE.EXPIRED, 'expired', out) end
      -- Whatever the record says: a due entry left behind would keep the
      -- day deadline due for ever (day_arm).
      redis.call('ZREM', P .. 'x', id)
    end
    n = n + 1
  end
  -- A finished in-flight order's final record is kept a day (the host's
  -- default idempotency TTL) for a retry that resumes after it ended.
  local old = redis.call('ZRANGEBYSCORE', P .. 'fdz', '-inf', NOW - DAYMS,
    'LIMIT', 0, max + 1)
  for i = 1, math.min(#old, max) do
    redis.call('HDEL', P .. 'fd', old[i])
    redis.call('ZREM', P .. 'fdz', old[i])
  end
  acct_flush()
  ev_flush()
  ended_flush()
  levels_out(out)
  out[#out + 1] = {'N', I(n), (#due > max or #old > max) and '1' or '0'}
  day_arm(inst)
  return out
end
-- close
-- The first trading day from `from` on whose close has passed (nil: none
-- yet).  Weekends and holidays are the only days skipped, so the loop ends
-- within a few days (at most the holidays listed + 3), however long ago
-- `from` is.
local function closable(from)
  for d = from, TODAY do
    if trading_day(inst, d) then
      if close_ms(inst.sess, d) <= NOW then return d end
      return nil
    end
  end
  return nil
end
-- No day before the instrument existed is closed.
local day = closable(inst.cday > 0 and inst.cday + 1 or lday(inst.ct))
day_arm(inst)
if not day then
  if inst.cday == 0 then return {} end
  -- The latest closed day again, as it was closed.  A day closed before
  -- cvol/cfrom were kept: its statistics if still in the hash.
  local c = redis.call('HMGET', KEYS[1], 'cvol', 'cfrom', 'sday', 'vol')
  local vol, from = c[1], c[2]
  if not vol then
    vol, from = '0', '0'
    if tonumber(c[3]) == inst.cday and (tonumber(c[4]) or 0) > 0 then
      vol, from = c[4], '1'
    end
  end
  return {R_CLOSE_rec('C', {day = datestr(inst.cday), px = I(inst.close),
    vol = vol, from = from, old = '1', more = '0'})}
end
local cms = close_ms(inst.sess, day)
local due = redis.call('ZCOUNT', P .. 'x', '-inf', cms)
if due > 0 then return {{'W', I(due), I(cms)}} end
-- A FOK order executing what it holds trades even past the session's end
-- (place.lua): the day closes once it is done, or its trades would miss
-- the close.  {'X'}: nothing closed; day_arm above set the day deadline
-- 1 s ahead.
if redis.call('EXISTS', P .. 'fx') == 1 then return {{'X'}} end
-- The day's listing volume and turnover: in the instrument hash while it
-- is the last day that traded, else kept in P.dv when a later day's first
-- trade replaced them (lib.lua, inst_save_stats).
local raw = redis.call('HMGET', KEYS[1], 'sday', 'vol', 'turn')
local vol, turn = 0, 0
if tonumber(raw[1]) == day then
  vol, turn = tonumber(raw[2]) or 0, tonumber(raw[3]) or 0
else
  local kept = redis.call('HGET', P .. 'dv', I(day))
  if kept then
    local v, t = string.match(kept, '^(%d+)|(%d+)$')
    vol, turn = tonumber(v), tonumber(t)
  end
end
redis.call('HDEL', P .. 'dv', I(day))
local close, from = inst.ref, '0'
if vol > 0 then
  close, from = floor((2 * turn + vol) / (2 * vol)), '1'
else
  vol, turn = 0, 0
end
redis.call('HSET', KEYS[1], 'ref', I(close), 'cday', I(day), 'close', I(close),
  'cvol', I(vol), 'cfrom', from)
-- An instrument created before rules versions: its rules may be cached
-- from now on (lib.lua, inst_load).
if not inst.rv then
  redis.call('HSET', KEYS[1], 'rv', inst_rv(), 'pad', INST_PAD)
end
-- The order and level hashes' padding (admin.lua create), for an
-- instrument created before it: written again at each close, it changes
-- nothing once there.
redis.call('HSET', P .. 'lq:b', PAD_F, INST_PAD)
redis.call('HSET', P .. 'lq:s', PAD_F, INST_PAD)
redis.call('HSET', P .. 'o', PAD_F, INST_PAD)
gm.emit('close', 'day', I(day), 'close', I(close), 'vol', I(vol),
  'turn', I(turn), 'from', from, 't', I(NOW))
inst.cday = day
day_arm(inst)
local more = closable(day + 1) and '1' or '0'
return {R_CLOSE_rec('C', {day = datestr(day), px = I(close), vol = I(vol),
  from = from, old = '0', more = more})}
