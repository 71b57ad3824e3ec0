-- place: order entry and matching.  One run of this script is one atomic
-- step that touches at most max_fills resting orders.  An order that still
-- crosses after that is left "in flight" (out of the book, its remainder
-- still frozen, recorded in P.fl) and the plugin runs 'continue' steps in
-- the same call until the order is filled, rests or is cancelled.  Each
-- step decides only from Redis state, so a retried call that replays the
-- steps it already ran and runs the rest ends where an unbroken call would.
--   ARGV new:      'new', side b|s, type L|M, tif 0-4, price, qty, expire_ms,
--                  post_only 0|1, stp 0-3, client order id, max steps,
--                  in-flight ms
--   ARGV replace:  'replace', order id, price (0: same), total qty (0: same),
--                  max steps, in-flight ms
--   ARGV continue: 'continue', order id, in-flight ms: the next step of an
--                  in-flight order (which cancels the remainder at once if
--                  order.cancel marked the order meanwhile: its record's cx)
-- An order in flight has the deadline inflight|<id>, in-flight ms after its
-- last step: if no retry of its call finished it by then (its broker
-- stopped), the deadline's callback takes the next steps (day.c).
-- Every check of new/replace runs before the first write: Redis does not
-- roll a script back, so a rejection must leave nothing changed.
-- Reply: records {'T', order...} (the order the reply is about), {'F',
-- fill...} (its fills in this step), {'O', order...} (other orders changed),
-- {'L', side, price, qty} (levels changed), {'D'} (client order id seen
-- before), {'U'} (a replace that changed nothing: no event), {'M', id}
-- (in flight: run 'continue' with this id next);
-- stale replies {'S', id} per order.
begin()
local op = ARGV[1]
local inst = inst_load()
if not inst then return inst_missing() end
local SYM = inst.sym
local FL, FD, FDZ = P .. 'fl', P .. 'fd', P .. 'fdz'
local IMS = tonumber(ARGV[op == 'new' and 12 or op == 'replace' and 6 or 3])

local out = {}
local o, old, post, stpm

-- In-flight record: every number as a '%d' string (cjson prints %.14g).
local function fl_pack()
  return cjson.encode({who = o.who, side = o.side, typ = o.typ,
    tif = I(o.tif), px = I(o.px), q = I(o.q), f = I(o.f), exp = I(o.exp),
    t = I(o.t), coid = o.coid or '', stp = I(stpm), n = I(o.n), ms = I(o.ms),
    fk = o.fk or '', rv = I(o.rv or 0), fy = o.fy or ''})
end

if op == 'continue' then
  local raw = redis.call('HGET', FL, ARGV[2])
  if not raw then
    -- Finished by another caller (its in-flight deadline, or the first run
    -- of a retried call): its final record is the answer.
    local done = redis.call('HGET', FD, ARGV[2])
    if done then return {cjson.decode(done)} end
    return rej('NOT_FOUND', 'order ' .. SYM .. ':' .. ARGV[2] ..
      ' is not matching any more; see order.get for its state')
  end
  local r = cjson.decode(raw)
  o = {id = ARGV[2], who = r.who, side = r.side, typ = r.typ,
    tif = tonumber(r.tif), px = tonumber(r.px), q = tonumber(r.q),
    f = tonumber(r.f), exp = tonumber(r.exp), t = tonumber(r.t),
    coid = r.coid, n = tonumber(r.n) + 1, ms = tonumber(r.ms),
    fk = r.fk or '', rv = tonumber(r.rv) or 0, fy = r.fy or ''}
  stpm = tonumber(r.stp)
  o.cx = r.cx -- who asked to cancel it while it was in flight (amend.lua)
elseif op == 'new' then
  local coid = ARGV[10]
  if coid ~= '' then
    local prev = redis.call('HGET', P .. 'co:' .. gm.participant, coid)
    if prev then
      local r = cjson.decode(prev)
      r[#r + 1] = {'D'}
      return r
    end
  end
  o = {who = gm.participant, side = ARGV[2], typ = ARGV[3],
    tif = tonumber(ARGV[4]), px = tonumber(ARGV[5]), q = tonumber(ARGV[6]),
    f = 0, exp = tonumber(ARGV[7]), t = NOW, coid = coid, n = 1,
    ms = tonumber(ARGV[11])}
  post, stpm = ARGV[8] == '1', tonumber(ARGV[9])
else
  old = ord_get(ARGV[2])
  if not old or old.who ~= gm.participant then
    return rej('NOT_FOUND', 'no open order ' .. SYM .. ':' .. ARGV[2] ..
      ' of yours (it may have filled, been cancelled, or been replaced by ' ..
      'a new order id; see order.get and order.list)')
  end
  if not redis.call('ZSCORE', P .. 'bz:' .. old.side, old.id) then
    return rej('FAILED_PRECONDITION', 'order ' .. SYM .. ':' .. old.id ..
      ' is held by a FOK order that is matching it; replace it once that' ..
      ' order has filled or let it go (in a moment), or cancel it')
  end
  local npx, ntot = tonumber(ARGV[3]), tonumber(ARGV[4])
  if npx == 0 then npx = old.px end
  if ntot == 0 then ntot = old.q + old.f end
  if ntot <= old.f then
    return rej('INVALID_ARGUMENT', 'quantity ' .. I(ntot) ..
      ' t is not above the ' .. I(old.f) .. ' t already filled; cancel instead')
  end
  o = {who = old.who, side = old.side, typ = 'L', tif = old.tif, px = npx,
    q = ntot - old.f, f = 0, exp = old.exp, t = NOW, n = 1,
    ms = tonumber(ARGV[5])}
  post, stpm = false, 0
end

local opp = o.side == 'b' and 's' or 'b'
local BZ = P .. 'bz:' .. opp
local function crosses(px)
  if o.side == 'b' then return px <= o.px end
  return px >= o.px
end

-- Why a FOK order is refused: it cannot fill in full.
local function fok_short(got, within)
  return FOK_SHORT .. ': ' .. I(got) .. ' t available at ' ..
    yuan(o.px) .. ' or better' .. (within or '') .. '; nothing was done'
end

-- The checks of a new order (or the new version of a replaced one), then
-- its id and frozen funds.  Returns a reply when the step ends here: a
-- rejection, or a quantity decrease that keeps the order's priority.
local function admit()
  -- Rules, in the order a trader would want to hear about them.
  if inst.halt == '1' then
    return rej('FAILED_PRECONDITION', SYM .. ' is halted (' .. (inst.hreason or '') ..
      '); orders are refused until an admin resumes it')
  end
  if not in_session(inst, inst.sess, NOW) then
    return rej('FAILED_PRECONDITION', SYM .. ' listing trading is closed now' ..
      ' (sessions ' .. sess_text(inst.sess) .. ' Asia/Shanghai, Mon-Fri); next open ' ..
      next_open(inst, inst.sess, NOW))
  end
  if o.q % inst.lot ~= 0 then
    return rej('INVALID_ARGUMENT', 'quantity ' .. I(o.q) .. ' t is not a multiple of the lot ' ..
      I(inst.lot) .. ' t')
  end
  if o.q + o.f >= inst.bmin then
    return rej('INVALID_ARGUMENT', 'listing quantity ' .. I(o.q + o.f) ..
      ' t is at or above the block threshold ' .. I(inst.bmin) ..
      ' t; use block.offer for block agreement trades')
  end
  local lo, hi = band(inst, inst.band)
  if o.typ == 'M' then
    o.px = o.side == 'b' and hi or lo -- bounded by the band: never walks ticks
    if o.tif ~= TIF.FOK then o.tif = TIF.IOC end
  else
    if o.px % inst.tick ~= 0 then
      return rej('INVALID_ARGUMENT', 'price ' .. yuan(o.px) ..
        ' is not on the tick of ' .. yuan(inst.tick) .. ' yuan')
    end
    if o.px < lo or o.px > hi then
      return rej('INVALID_ARGUMENT', 'price ' .. yuan(o.px) ..
        ' is outside today\'s band ' .. band_text(inst, inst.band, lo, hi))
    end
  end
  if o.tif == TIF.GTD and o.exp <= NOW then
    local function at(ms) -- as gm__carbon_format_time writes it
      return string.format('%sT%02d:%02d:%02d+08:00', datestr(lday(ms)),
        floor(lmin(ms) / 60), lmin(ms) % 60,
        floor(((ms + TZMS) % DAYMS) / 1000) % 60)
    end
    return rej('INVALID_ARGUMENT', string.format('expire_ms %d', o.exp) ..
      ' (' .. at(o.exp) .. ') is not in the future: it is now ' .. at(NOW) ..
      '; give a later time or use DAY')
  end
  if o.tif == TIF.DAY then o.exp = close_ms(inst.sess, TODAY) end
  if o.tif ~= TIF.DAY and o.tif ~= TIF.GTD then o.exp = 0 end

  local a = acct(o.who)
  local cash, alw = a.c, a.al
  if old then -- what the replaced order holds counts as available
    if old.side == 'b' then cash = cash + old.q * old.px else alw = alw + old.q end
  end
  if o.side == 'b' then
    local need = o.q * o.px
    if cash < need then
      return rej('FAILED_PRECONDITION', 'not enough cash: the order holds ' ..
        yuan(need) .. ' yuan (' .. I(o.q) .. ' t at ' .. yuan(o.px) ..
        '), available ' .. yuan(cash) .. '; deposit cash or reduce the order')
    end
  elseif alw < o.q then
    return rej('FAILED_PRECONDITION', 'not enough allowances: ' .. I(o.q) ..
      ' t to sell, ' .. I(alw) .. ' t available' .. (a.lk > 0 and
      (' (' .. I(a.lk) .. ' t bought today become sellable next trading day)') or ''))
  end
  if stpm == STP.DEFAULT then stpm = a.stp end
  if stpm == STP.DEFAULT then stpm = STP.CANCEL_INCOMING end

  if post then
    local top = redis.call('ZRANGE', BZ, '0', '0', 'WITHSCORES')
    if #top > 0 and crosses(math.abs(tonumber(top[2]))) then
      return rej('FAILED_PRECONDITION', 'post-only order would trade at ' ..
        yuan(math.abs(tonumber(top[2]))) .. '; change the price or drop post-only (post_only, gm: --post-only)')
    end
  end
  -- FOK: counted over the best max_fills resting orders first.  Enough
  -- there: it executes in this one step as any order would, so nothing can
  -- take what it counted.  More crossing orders beyond them: it holds them
  -- over several steps (fok_hold) and executes only once it holds enough.
  if o.tif == TIF.FOK then
    local ids = redis.call('ZRANGE', BZ, 0, inst.maxf - 1)
    local got, stop = 0, #ids < inst.maxf
    for _, rid in ipairs(ids) do
      local r = ord_get(rid)
      if not crosses(r.px) or got >= o.q then stop = true break end
      if r.exp > 0 and r.exp <= NOW then -- expires, does not trade
      elseif r.who == o.who then
        if stpm ~= STP.CANCEL_RESTING then stop = true break end
      else
        got = got + r.q
      end
    end
    if got < o.q then
      if stop then return rej('FAILED_PRECONDITION', fok_short(got)) end
      o.fk, o.rv = 'h', 0
    end
  end

  -- All checks passed: from here on, write.
  -- The same price and no more: the order keeps its id and priority (a
  -- replace that changes nothing is answered with the order as it is).
  if old and o.px == old.px and o.q <= old.q then
    local d = old.q - o.q
    if d > 0 then
      if old.side == 'b' then a.cf, a.c = a.cf - d * old.px, a.c + d * old.px
      else a.af, a.al = a.af - d, a.al + d end
      old.q = o.q
      redis.call('HSET', P .. 'o', old.id, ord_pack(old))
      level_add(old.side, old.px, -d)
      ord_emit(old, ord_state(old))
    end
    out[#out + 1] = ord_rec(old, ord_state(old), nil, 'T')
    -- Nothing changed: no order event to publish (orders.c).
    if d == 0 then out[#out + 1] = {'U'} end
    acct_flush()
    ev_flush()
    levels_out(out)
    return out
  end
  o.id = string.format('%012x', redis.call('HINCRBY', KEYS[1], 'seq', '1'))
  if old then ord_end(old, STATE.CANCELLED, 'replaced by ' .. SYM .. ':' .. o.id, out) end
  if o.side == 'b' then
    a.c, a.cf = a.c - o.q * o.px, a.cf + o.q * o.px
  else
    a.al, a.af = a.al - o.q, a.af + o.q
  end
  return nil
end

-- One trade of o against resting order r at its price rpx.  `kept`: r is
-- held by o (a FOK order past max_fills), out of the book and of the
-- levels already.  Returns a reason that ends o when the trade cannot be
-- made.
local function trade(r, rpx, kept)
  local q = math.min(o.q, r.q)
  local amt = q * rpx
  local buy, sell = o, r
  if o.side == 's' then buy, sell = r, o end
  local ba, sa = acct(buy.who), acct(sell.who)
  -- Which balance would pass, said to o's owner (the other side unnamed).
  if held(sa, 'c') + amt > MAXCASH then
    return (sell == o and 'your' or "the resting seller's") ..
      ' cash would pass the limit of ' .. yuan(MAXCASH) ..
      ' yuan that keeps amounts exact'
  end
  if held(ba, 'a') + q > MAXCASH then
    return (buy == o and 'your' or "the resting buyer's") ..
      ' allowances would pass the limit of ' ..
      string.format('%d', MAXCASH) .. ' t that keeps amounts exact'
  end
  if inst.turn + amt > MAXCASH then
    return "the instrument's turnover today would pass the limit of " ..
      yuan(MAXCASH) .. ' yuan that keeps amounts exact'
  end
  -- The buyer held q * its own price; it pays q * the resting price.
  ba.cf = ba.cf - q * buy.px
  ba.c = ba.c + q * (buy.px - rpx)
  ba.lk, ba.ld = ba.lk + q, TODAY -- sellable from the next trading day
  sa.af = sa.af - q
  sa.c = sa.c + amt
  o.q, o.f, r.q, r.f = o.q - q, o.f + q, r.q - q, r.f + q
  inst.tseq = inst.tseq + 1 -- written by inst_save_stats
  local tid = string.format('T%012x', inst.tseq)
  trade_emit(tid, buy.who, sell.who, buy.id, sell.id, rpx, q, amt, opp, '0')
  out[#out + 1] = fill_rec(tid, rpx, q, amt, r.id)
  if inst.open == 0 then inst.open, inst.high, inst.low = rpx, rpx, rpx end
  if rpx > inst.high then inst.high = rpx end
  if rpx < inst.low then inst.low = rpx end
  inst.last, inst.vol, inst.turn, inst.ntr =
    rpx, inst.vol + q, inst.turn + amt, inst.ntr + 1
  if not kept then level_add(opp, rpx, -q) end
  if r.q == 0 then
    book_remove(r)
    ord_emit(r, STATE.FILLED)
    ord_ended(r, STATE.FILLED)
    out[#out + 1] = ord_rec(r, STATE.FILLED)
  else
    redis.call('HSET', P .. 'o', r.id, ord_pack(r))
    ord_emit(r, STATE.PARTIAL)
    out[#out + 1] = ord_rec(r, STATE.PARTIAL)
  end
  return nil
end

-- One step of matching: the best crossing resting order, again and again,
-- until o is filled, nothing crosses, or max_fills resting orders were
-- touched while more still cross.  Returns the reason that ends the order
-- (nil: none), whether it still crosses past the bound, and whether it
-- traded.
-- The best resting order is asked for only if it crosses (by score: asks
-- +price, bids -price), without its score: its price is its record's, the
-- score's own (book_add and give_back write both from it), so the reply
-- carries no double for Redis to format and the script none to parse.
local function match()
  local touched, traded = 0, false
  local lim = o.side == 'b' and I(o.px) or '-' .. I(o.px)
  while o.q > 0 do
    local top = redis.call('ZRANGE', BZ, '-inf', lim, 'BYSCORE', 'LIMIT', '0',
      '1')
    if #top == 0 then break end
    if touched >= inst.maxf then return nil, true, traded end
    local r = ord_get(top[1])
    local rpx = r.px
    touched = touched + 1
    if r.exp > 0 and r.exp <= NOW then
      ord_end(r, STATE.EXPIRED, 'expired', out)
    elseif r.who == o.who then
      if stpm == STP.CANCEL_RESTING or stpm == STP.CANCEL_BOTH then
        ord_end(r, STATE.CANCELLED, 'self-trade prevention', out)
      end
      if stpm ~= STP.CANCEL_RESTING then return 'self-trade prevention', false, traded end
    else
      local why = trade(r, rpx)
      if why then return why, false, traded end
      traded = true
    end
  end
  return nil, false, traded
end

-- A FOK order past max_fills, in three phases kept in its P.fl record
-- (fk), each step touching at most max_fills resting orders:
--   h  holding: takes the best crossing resting orders out of the book
--      into P.h:<id> (same scores, so same priority) until they hold its
--      quantity.  Nobody else can trade them meanwhile, and a cancel of
--      one waits (P.hx, amend.lua); an expiry meanwhile is applied when it
--      is given back.  Short (nothing more crosses, or a resting order of
--      its own with STP other than cancel-resting), or at max_steps: it
--      gives back.  A cancel, halt or the session's end meanwhile: the
--      same, with that reason.
--   x  executing: trades what it holds in price-time order (its own
--      orders there are cancelled: STP cancel-resting); the last one,
--      partly taken, goes back in its place.  It fills in full: nothing
--      stops it (a cancel of it is refused), but the cash limit.
--   a  giving back: each held order goes back to its place in the book,
--      ended instead if a cancel waits for it or it expired; then the
--      order ends with the reason in fy.
local HZ = P .. 'h:'
-- Every order held on the opposite side, whichever FOK holds it (same
-- scores): an order must not rest across them (see the end of this file).
local HB = P .. 'hb:' .. opp
-- After dn (+1, -1, 0) members joined or left P.hb:b/s: P.i's hbn counts
-- them, so that an order about to rest skips the check of HB while it is
-- '0' (most calls: one command less).  Absent (an instrument made before
-- the count, or never counted): both sets are counted once here.
local function hb_moved(dn)
  if inst.hbn then
    inst.hbn = I(redis.call('HINCRBY', KEYS[1], 'hbn', I(dn)))
    return
  end
  inst.hbn = I(redis.call('ZCARD', P .. 'hb:b') +
    redis.call('ZCARD', P .. 'hb:s'))
  redis.call('HSET', KEYS[1], 'hbn', inst.hbn)
end
-- A held order leaves P.h: back in the book, or ended.
local function give_back(r, score)
  local cx = redis.call('HGET', P .. 'hx', r.id)
  if cx then
    redis.call('HDEL', P .. 'hx', r.id)
    ord_end(r, STATE.CANCELLED, 'cancelled by ' .. cx, out, true)
  elseif r.exp > 0 and r.exp <= NOW then
    ord_end(r, STATE.EXPIRED, 'expired', out, true)
  else
    redis.call('ZADD', BZ, score, r.id)
    level_add(opp, r.px, r.q)
  end
end
-- Returns 'full', 'more' (the step's bound reached) or 'short'.
local function fok_hold()
  local n = 0
  while o.rv < o.q do
    local top = redis.call('ZRANGE', BZ, '0', '0', 'WITHSCORES')
    if #top == 0 or not crosses(math.abs(tonumber(top[2]))) then
      return 'short'
    end
    if n >= inst.maxf then return 'more' end
    local r = ord_get(top[1])
    n = n + 1
    if r.exp > 0 and r.exp <= NOW then
      ord_end(r, STATE.EXPIRED, 'expired', out)
    elseif r.who == o.who and stpm ~= STP.CANCEL_RESTING then
      return 'short'
    else
      redis.call('ZREM', BZ, r.id)
      redis.call('ZADD', HZ .. o.id, top[2], r.id)
      hb_moved(redis.call('ZADD', HB, top[2], r.id))
      level_add(opp, r.px, -r.q)
      if r.who ~= o.who then o.rv = o.rv + r.q end
    end
  end
  return 'full'
end
-- Returns the reason that ends o (nil: none), whether steps remain, and
-- whether it traded.
local function fok_execute()
  local ids = redis.call('ZRANGE', HZ .. o.id, 0, inst.maxf - 1, 'WITHSCORES')
  local traded, why = false, nil
  for i = 1, #ids, 2 do
    redis.call('ZREM', HZ .. o.id, ids[i])
    hb_moved(-redis.call('ZREM', HB, ids[i]))
    local r = ord_get(ids[i])
    if not r then -- only a bug ends a held order; the FOK falls short
    elseif r.who == o.who then
      redis.call('HDEL', P .. 'hx', r.id)
      ord_end(r, STATE.CANCELLED, 'self-trade prevention', out, true)
    elseif o.q > 0 and not why then
      why = trade(r, r.px, true)
      if not why then traded = true end
      if r.q > 0 then give_back(r, ids[i + 1])
      else redis.call('HDEL', P .. 'hx', r.id) end
    else
      give_back(r, ids[i + 1])
    end
  end
  local left = redis.call('EXISTS', HZ .. o.id) == 1
  if why and left then o.fk, o.fy = 'a', why return nil, true, traded end
  return why, left, traded
end
-- Returns whether everything held went back.
local function fok_give_back()
  local ids = redis.call('ZRANGE', HZ .. o.id, 0, inst.maxf - 1, 'WITHSCORES')
  for i = 1, #ids, 2 do
    redis.call('ZREM', HZ .. o.id, ids[i])
    hb_moved(-redis.call('ZREM', HB, ids[i]))
    local r = ord_get(ids[i])
    if r then give_back(r, ids[i + 1]) end
  end
  return #ids < 2 * inst.maxf or redis.call('EXISTS', HZ .. o.id) == 0
end
-- One step of a FOK order past max_fills (stop: a reason to give back).
local function fok_step(stop)
  if o.fk == 'h' then
    local r = stop and 'stop' or fok_hold()
    if r == 'full' then
      -- Executing: the day's close waits for it (P.fx, sweep.lua).
      o.fk = 'x'
      redis.call('SADD', P .. 'fx', o.id)
      return nil, true, false
    end
    if r == 'more' and o.n < o.ms then return nil, true, false end
    o.fk = 'a'
    o.fy = stop or r == 'more' and fok_short(o.rv, ' within ' ..
      I(o.ms * inst.maxf) .. ' resting orders (max_steps ' .. I(o.ms) ..
      ' x max_fills ' .. I(inst.maxf) .. ')') or fok_short(o.rv)
    return nil, true, false
  end
  if o.fk == 'x' then return fok_execute() end
  if fok_give_back() then return o.fy, false, false end
  return nil, true, false
end

local why, more, traded
if op == 'continue' then
  -- A cancel accepted while the order was in flight wins before any fill
  -- of this step.  The order was accepted when trading was open; it trades
  -- no further once that is no longer so.  (A FOK order executing what it
  -- holds or giving it back goes on: fok_step.)
  if o.fk == 'x' or o.fk == 'a' then
  elseif o.cx and o.cx ~= '' then
    why = 'cancelled by ' .. o.cx .. ' while it was matching'
  elseif inst.halt == '1' then
    why = SYM .. ' was halted while the order was matching'
  elseif not in_session(inst, inst.sess, NOW) then
    why = 'the listing session ended while the order was matching'
  elseif o.exp > 0 and o.exp <= NOW then
    why = 'its expiry (GTD) passed while the order was matching'
  end
else
  local r = admit()
  if r then return r end
end
if o.fk and o.fk ~= '' then
  why, more, traded = fok_step(why)
elseif not why then
  why, more, traded = match()
end
if more and o.n >= o.ms and (o.fk or '') == '' then
  why, more = 'step bound reached: ' .. I(o.ms) .. ' steps of ' ..
    I(inst.maxf) .. ' resting orders; place the rest again', false
end

local st
if more then
  st, why = ord_state(o), 'in flight: matching continues'
  redis.call('HSET', FL, o.id, fl_pack())
  gm.deadline('inflight', o.id, NOW + IMS)
  -- Open while in flight: mass cancel and order.list walk it too.
  if op ~= 'continue' then redis.call('SADD', P .. 'op:' .. o.who, op_m(o.id)) end
else
  -- Orders a FOK holds are out of the book, so o did not meet them; it must
  -- not rest across them either, or giving them back would cross the book.
  if o.q > 0 and not why and o.tif ~= TIF.IOC and o.tif ~= TIF.FOK then
    if not inst.hbn then hb_moved(0) end
    local h = inst.hbn ~= '0' and
      redis.call('ZRANGE', HB, '0', '0', 'WITHSCORES') or {}
    if #h > 0 and crosses(math.abs(tonumber(h[2]))) then
      why = 'would rest across orders at ' .. yuan(math.abs(tonumber(h[2]))) ..
        ' that a FOK order is matching; place the rest again in a moment'
    end
  end
  if o.q == 0 then
    st = STATE.FILLED
    ord_ended(o, st, why)
  elseif why or o.tif == TIF.IOC or o.tif == TIF.FOK then
    why = why or (o.typ == 'M' and 'market order remainder' or 'IOC remainder')
    release(o)
    o.tot, o.q, st = o.q + o.f, 0, STATE.CANCELLED
    ord_ended(o, st, why)
  else
    book_add(o)
    st = ord_state(o)
    -- A GTD order expiring before today's close brings the instrument's
    -- deadline forward; DAY orders and later expiries wait for a close it
    -- already waits for (lib.lua, day_arm).
    if o.tif == TIF.GTD and o.exp < close_ms(inst.sess, TODAY) then
      day_lower(inst, o.exp)
    end
  end
  if op == 'continue' then
    redis.call('HDEL', FL, o.id)
    redis.call('SREM', P .. 'fx', o.id)
    gm.deadline_cancel('inflight', o.id)
    if o.q == 0 then op_rem(o.who, o.id)
    elseif op_m(o.id) ~= o.id then
      -- Rested: book_add added the decimal member; a broker of the
      -- previous layout added the 12-hex id at the first step, and both
      -- would count (SCARD, order.list's pages).
      redis.call('SREM', P .. 'op:' .. o.who, o.id)
    end
  end
end
ord_emit(o, st, why)
local this = ord_rec(o, st, why, 'T')
table.insert(out, 1, this)
if traded then inst_save_stats(inst) end
acct_flush()
ev_flush()
ended_flush()
levels_out(out)
if op == 'continue' and not more then
  redis.call('HSET', FD, o.id, cjson.encode(this))
  redis.call('ZADD', FDZ, NOW, o.id)
end
if o.coid and o.coid ~= '' then
  -- A repeated client order id gets the first step's reply, or once a
  -- multi-step order is done, its final record (its fills: records.trades).
  local first = out
  if op == 'continue' then first = {this} end
  if op == 'new' or not more then
    redis.call('HSET', P .. 'co:' .. o.who, o.coid, cjson.encode(first))
  end
end
if more then out[#out + 1] = {'M', o.id} end
return out
