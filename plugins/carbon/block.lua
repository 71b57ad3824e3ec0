-- block: block agreement trades, negotiated off the book.
--   ARGV offer:  'offer', side b|s (the offerer's), counterparty, price, qty
--   ARGV accept: 'accept', offer id     (the counterparty)
--   ARGV reject: 'reject', offer id, '1' (the counterparty only) or '0'
--                                       (the counterparty rejects, or the
--                                        offerer withdraws: as before
--                                        block.withdraw existed)
--   ARGV withdraw: 'withdraw', offer id (the offerer only)
-- An open offer holds the offerer's cash (price * qty) or allowances; it
-- expires at the end of the day's block session (sweep.lua, run by the
-- instrument's day deadline: brought forward when the block session ends
-- before the close).
-- Offer record in P.bk: lib.lua, offer_get.
-- Reply: {'B', id, offerer, counterparty, side, price, qty, state, trade id,
-- created} and, on accept, {'F', ...} as in place.lua.
begin()
local op, who = ARGV[1], gm.participant
local inst = inst_load()
if not inst then return inst_missing() end
local SYM = inst.sym
local function window_check()
  if inst.halt == '1' then
    return rej('FAILED_PRECONDITION', SYM .. ' is halted (' ..
      (inst.hreason or '') .. '); wait until an admin resumes it')
  end
  if not in_session(inst, inst.bsess, NOW) then
    return rej('FAILED_PRECONDITION', SYM .. ' block trading is closed now' ..
      ' (block sessions ' .. sess_text(inst.bsess) ..
      ' Asia/Shanghai, Mon-Fri); next open ' .. next_open(inst, inst.bsess, NOW))
  end
  return nil
end
local function funds_check(a, side, px, q)
  if side == 'b' and a.c < px * q then
    return rej('FAILED_PRECONDITION', 'not enough cash: ' .. yuan(px * q) ..
      ' yuan needed, ' .. yuan(a.c) .. ' available; deposit cash first')
  elseif side == 's' and a.al < q then
    return rej('FAILED_PRECONDITION', 'not enough allowances: ' .. I(q) ..
      ' t needed, ' .. I(a.al) .. ' t available')
  end
  return nil
end
local function price_check(px)
  local lo, hi = band(inst, inst.bband)
  if px % inst.tick ~= 0 then
    return rej('INVALID_ARGUMENT', 'price ' .. yuan(px) ..
      ' is not on the tick of ' .. yuan(inst.tick) .. ' yuan')
  end
  if px < lo or px > hi then
    return rej('INVALID_ARGUMENT', 'price ' .. yuan(px) ..
      ' is outside the block band ' .. band_text(inst, inst.bband, lo, hi))
  end
  return nil
end

local out = {}
if op == 'offer' then
  local b = {of = who, side = ARGV[2], cp = ARGV[3], px = tonumber(ARGV[4]),
    q = tonumber(ARGV[5]), t = NOW}
  local e = window_check() or price_check(b.px)
  if e then return e end
  if b.q < inst.bmin or b.q % inst.lot ~= 0 then
    return rej('INVALID_ARGUMENT', 'a block offer needs at least ' ..
      I(inst.bmin) .. ' t in lots of ' .. I(inst.lot) .. ' t; ' .. I(b.q) ..
      ' t given (smaller orders go to order.place)')
  end
  local a = acct(who)
  e = funds_check(a, b.side, b.px, b.q)
  if e then return e end
  if b.side == 'b' then a.c, a.cf = a.c - b.px * b.q, a.cf + b.px * b.q
  else a.al, a.af = a.al - b.q, a.af + b.q end
  b.id = string.format('B%012x', redis.call('HINCRBY', KEYS[1], 'bseq', 1))
  redis.call('HSET', P .. 'bk', b.id, b.of .. '|' .. b.cp .. '|' .. b.side ..
    '|' .. I(b.px) .. '|' .. I(b.q) .. '|' .. I(b.t))
  local exp = close_ms(inst.bsess, TODAY)
  redis.call('ZADD', P .. 'x', exp, b.id)
  if exp < close_ms(inst.sess, TODAY) then day_lower(inst, exp) end
  redis.call('SADD', P .. 'bo:' .. b.of, b.id)
  redis.call('SADD', P .. 'bo:' .. b.cp, b.id)
  offer_emit(b, OFFER.OPEN)
  out[#out + 1] = offer_rec(b, OFFER.OPEN)
else
  local b = offer_get(ARGV[2])
  if not b or (b.cp ~= who and b.of ~= who) then
    return rej('NOT_FOUND', 'no open block offer ' .. SYM .. ':' .. ARGV[2] ..
      ' to or from you (it may have been accepted, rejected or expired)')
  end
  if op == 'withdraw' and b.of ~= who then
    return rej('FAILED_PRECONDITION', 'only ' .. b.of .. ', who made block ' ..
      'offer ' .. SYM .. ':' .. ARGV[2] .. ', may withdraw it; to turn ' ..
      'down an offer made to you, reject it (block.reject; gm carbon block ' ..
        'reject ' .. SYM .. ':' .. ARGV[2] .. ')')
  end
  if op == 'reject' and ARGV[3] == '1' and b.cp ~= who then
    return rej('FAILED_PRECONDITION', 'block offer ' .. SYM .. ':' ..
      ARGV[2] .. ' is your own offer to ' .. b.cp .. '; only ' .. b.cp ..
      ' may reject it: to take it back, withdraw it (block.withdraw; gm ' ..
      'carbon block withdraw ' .. SYM .. ':' .. ARGV[2] .. ')')
  end
  local oa = acct(b.of)
  if op == 'reject' or op == 'withdraw' then
    if b.side == 'b' then oa.cf, oa.c = oa.cf - b.px * b.q, oa.c + b.px * b.q
    else oa.af, oa.al = oa.af - b.q, oa.al + b.q end
    local st = b.cp == who and OFFER.REJECTED or OFFER.WITHDRAWN
    offer_remove(b)
    offer_emit(b, st)
    out[#out + 1] = offer_rec(b, st)
  else
    if b.cp ~= who then
      return rej('PERMISSION_DENIED', 'only ' .. b.cp ..
        ' may accept this offer; the offerer may withdraw it (block.withdraw; ' ..
        'gm carbon block withdraw ' .. SYM .. ':' .. ARGV[2] .. ')')
    end
    local e = window_check() or price_check(b.px)
    if e then return e end
    local ca = acct(who)
    local cside = b.side == 'b' and 's' or 'b'
    e = funds_check(ca, cside, b.px, b.q)
    if e then return e end
    local amt = b.px * b.q
    local ba, sa = oa, ca
    if b.side == 's' then ba, sa = ca, oa end
    -- Which balance, whose, by how much, and who can make room: the
    -- accepting party cannot, so it is told what to ask for.
    if held(sa, 'c') + amt > MAXCASH then
      return rej('RESOURCE_EXHAUSTED', 'the seller ' .. sa.who ..
        '\'s cash would pass the limit of ' .. yuan(MAXCASH) ..
        ' yuan that keeps amounts exact: it holds ' .. yuan(held(sa, 'c')) ..
        ' yuan and the trade pays it ' .. yuan(amt) .. ' yuan; nothing was ' ..
        'done: an admin must withdraw at least ' ..
        yuan(held(sa, 'c') + amt - MAXCASH) .. ' yuan of ' .. sa.who ..
        '\'s cash (account.withdraw; gm carbon withdraw) before the offer ' ..
        'can be accepted')
    end
    if held(ba, 'a') + b.q > MAXCASH then
      return rej('RESOURCE_EXHAUSTED', 'the buyer ' .. ba.who ..
        '\'s allowances would pass the limit of ' .. I(MAXCASH) ..
        ' t that keeps amounts exact: it holds ' .. I(held(ba, 'a')) ..
        ' t and the trade gives it ' .. I(b.q) .. ' t; nothing was done: ' ..
        'an admin must withdraw at least ' ..
        I(held(ba, 'a') + b.q - MAXCASH) .. ' t of ' .. ba.who ..
        '\'s allowances (account.withdraw; gm carbon withdraw) before the ' ..
        'offer can be accepted')
    end
    if b.side == 'b' then ba.cf = ba.cf - amt else ba.c = ba.c - amt end
    if b.side == 's' then sa.af = sa.af - b.q else sa.al = sa.al - b.q end
    ba.lk, ba.ld = ba.lk + b.q, TODAY
    sa.c = sa.c + amt
    inst.tseq = inst.tseq + 1 -- written by inst_save_stats
    local tid = string.format('T%012x', inst.tseq)
    trade_emit(tid, ba.who, sa.who, b.id, b.id, b.px, b.q, amt, b.side, '1')
    -- The trade's entry before the offer's, which names it: a settler
    -- batch that ends between the two never shows an accepted offer whose
    -- trade is not in the ledger yet.
    ev_flush()
    inst.bvol = inst.bvol + b.q
    inst_save_stats(inst)
    offer_remove(b)
    offer_emit(b, OFFER.ACCEPTED, tid)
    out[#out + 1] = offer_rec(b, OFFER.ACCEPTED, tid)
    out[#out + 1] = fill_rec(tid, b.px, b.q, amt, b.id)
  end
end
acct_flush()
ev_flush()
return out
