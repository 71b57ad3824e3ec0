-- bid: sealed bids of one tender (tag t:<id>).  A bid arrives sealed by C
-- (bid.c): the script sees its hash, the sealed text in base64 and what is
-- public anyway (currency, the items it prices, the bidder's register
-- entry), never a price.
--   ARGV[1] = op, ARGV[2] = tender id, then:
--   submit    mode(new|replace) hash sealed kid cur items
--   withdraw  -
--   get       supplier
local op, id = ARGV[1], ARGV[2]

local function closed(t)
  if t.st ~= 'active' then
    return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' .. t.st ..
      (t.st == 'draft' and '; bids open when it is published' or
       '; bids are no longer taken'))
  end
  local dl = tonumber(t.dl)
  if NOW >= dl then
    return rej('FAILED_PRECONDITION', 'bids for tender ' .. id ..
      ' closed at ' .. when(dl) .. ' (Asia/Shanghai); this one came ' ..
      (NOW == dl and 'at the deadline; bids must arrive before it' or
       I(NOW - dl) .. ' ms after the deadline'))
  end
end

if op == 'submit' then
  local mode, h, sealed, kid = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  local t = tender('dl', 'cur', 'items', 'bseq', 'kid')
  if not t then return no_tender(id) end
  local e = closed(t)
  if e then return e end
  -- Every bid of a tender is sealed under one key (the first bid's), so a
  -- broker holding it opens them all: one sealed under another broker's key
  -- file could never be opened with the rest.
  if t.kid and t.kid ~= kid then
    return rej('FAILED_PRECONDITION', 'this broker cannot seal bids for ' ..
      'tender ' .. id .. ': its bid key (id ' .. kid .. ') is not the one ' ..
      'the tender\'s bids are sealed with (id ' .. t.kid .. '); try again ' ..
      'later, and tell the operator that every gmd needs the same key file')
  end
  if ARGV[7] ~= t.cur then
    return rej('INVALID_ARGUMENT', 'tender ' .. id .. ' is in ' .. t.cur ..
      '; price your bid in ' .. t.cur .. ', not ' .. ARGV[7])
  end
  if ARGV[8] ~= t.items then
    return rej('INVALID_ARGUMENT', 'your bid prices the items ' ..
      string.sub(ARGV[8], 2, -2) .. '; tender ' .. id .. ' asks for ' ..
      string.sub(t.items, 2, -2) .. ' (one line each)')
  end
  local b = bid_get(WHO)
  local live = b and b.st == 'submitted'
  if mode == 'new' and live then
    return rej('ALREADY_EXISTS', 'you already have a bid on tender ' .. id ..
      ' (version ' .. I(b.ver) .. '); replace it with gm procurement rebid (bid.replace) ' ..
      'or withdraw it first with gm procurement withdraw')
  end
  if mode == 'replace' and not live then
    return rej('NOT_FOUND', 'you have no bid on tender ' .. id ..
      ' to replace; submit one with gm procurement bid (bid.submit)')
  end
  local seq
  if live then
    seq = b.seq
  else
    seq = tonumber(t.bseq) + 1
    redis.call('HSET', T, 'bseq', I(seq))
  end
  if not t.kid then redis.call('HSET', T, 'kid', kid) end
  local nb = {st = 'submitted', ver = b and b.ver + 1 or 1, h = h, kid = kid,
    t = NOW, seq = seq}
  redis.call('HSET', P .. 'b', WHO, bid_pack(nb))
  redis.call('HSET', P .. 'bc', WHO, sealed)
  redis.call('ZADD', P .. 'bz', seq, WHO)
  local action = live and 'replaced' or 'submitted'
  gm.emit('bid', 'id', id, 'supplier', WHO, 'action', action,
    'ver', I(nb.ver), 'hash', h, 't', I(NOW))
  return {action, h, I(nb.ver), I(NOW)}
end

if op == 'withdraw' then
  local t = tender('dl')
  if not t then return no_tender(id) end
  local e = closed(t)
  if e then return e end
  local b = bid_get(WHO)
  if not b or b.st ~= 'submitted' then
    return rej('NOT_FOUND', 'you have no bid on tender ' .. id ..
      ' to withdraw')
  end
  b.st, b.t = 'withdrawn', NOW
  redis.call('HSET', P .. 'b', WHO, bid_pack(b))
  redis.call('HDEL', P .. 'bc', WHO)
  redis.call('ZREM', P .. 'bz', WHO)
  gm.emit('bid', 'id', id, 'supplier', WHO, 'action', 'withdrawn',
    'ver', I(b.ver), 'hash', b.h, 't', I(NOW))
  return {'withdrawn', b.h, I(b.ver), I(NOW)}
end

if op == 'get' then
  local t = tender('dl', 'def', 'lead', 'buyers', 'round')
  if not t then return no_tender(id) end
  local b = bid_get(ARGV[3])
  return {t.st, t.dl, t.def, t.lead, t.buyers, b and b.rec or false,
    redis.call('HGET', P .. 'bc', ARGV[3]) or false,
    redis.call('HGET', P .. 'o', ARGV[3]) or false, t.round or '0'}
end

return rej('INTERNAL', 'bid: unknown op ' .. tostring(op))
