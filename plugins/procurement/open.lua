-- open: the close of bidding, the opening of the sealed bids and their
-- evaluation in bounded pages (evaluate.c drives it from the tender's
-- "open" deadline), and the committee's scores (comprehensive scoring).
-- Every step checks the tender's state and round, so a step replayed or
-- arriving late changes nothing.
--   ARGV[1] = op, ARGV[2] = tender id, then:
--   close    seed                  the bid deadline passed: stop taking bids
--   page     round start n         n bids from `start` (sealed or opened),
--                                  each with its register entry if kept
--   store    round start, then (supplier valid bid green sme evaluated
--            member smecls hash reasons checks register noprice text)...
--            (register: "uscc|size" as read at the opening, kept in P.rg
--            so a re-evaluation judges the entry at the deadline;
--            noprice: 1 when the bid has no price to give, beyond any
--            amount: its bid is 0 then, not its price)
--   finish   round
--   score    (supplier score)...               by an evaluator
--   rinfo    -                     state, round, whether every score is in
--   tpage    round start n         valid bids by evaluated price, scored,
--                                  with the score version they were read at
--   tstore   round version, then (supplier price_score tech total member)...
-- (records joined by tabs, one per argument: C sends at most 250)
--   tfinish  round version
-- The totals are computed by the "rank" deadline (evaluate.c), set by the
-- score that completes the committee's scores and by every later change:
-- claimed once, fired again after a crash.  T.scv counts the score calls;
-- tstore and tfinish of totals read at another version answer 'stale'
-- and store nothing, so a score changed while totals compute is never
-- overwritten by them: the firing its change set computes them again.
local op, id = ARGV[1], ARGV[2]

local function opening(t, round)
  if not t then return no_tender(id) end
  if t.st ~= 'opening' or t.round ~= round then
    return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' .. t.st ..
      ' in round ' .. (t.round or '0') .. ', not opening round ' .. round)
  end
end
local function scoring(t, round)
  if not t then return no_tender(id) end
  if t.st ~= 'scoring' or (round and t.round ~= round) then
    return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' .. t.st ..
      '; the committee scores bids after the opening of a tender awarded ' ..
      'by comprehensive scoring')
  end
end
-- Whether every evaluator has scored every valid bid of the round.
local function complete(t)
  local n = tonumber(t.nvalid)
  for e in string.gmatch(t.evs, '[^,]+') do
    if tonumber(redis.call('HGET', P .. 'scn:' .. t.round, e) or '0') < n then
      return false
    end
  end
  return true
end

if op == 'close' then
  local t = tender('dl', 'round', 'seed', 'evat', 'nb', 'def', 'am', 'pw',
    'evs', 'lead', 'ver', 'pub', 'aw', 'cur', 'prog')
  if not t then return {'none', 'gone'} end
  if t.st == 'active' then
    if NOW < tonumber(t.dl) then return {'early', t.dl} end
    local nb = redis.call('ZCARD', P .. 'bz')
    t.st, t.round, t.seed, t.evat, t.nb, t.prog = 'opening', '1', ARGV[3],
      I(NOW), I(nb), '0'
    redis.call('HSET', T, 'st', 'opening', 'round', '1', 'seed', ARGV[3],
      'closed', I(NOW), 'evat', I(NOW), 'nb', I(nb), 'prog', '0',
      'upd', I(NOW))
    t.id = id
    tender_emit('opened', t)
  end
  if t.st ~= 'opening' then return {'none', t.st} end
  return {'open', t.round, t.seed, t.evat, t.nb, t.def, t.am, t.pw, t.evs,
    t.cur, t.prog or '0'}
end

if op == 'page' then
  local round, start, n = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  local t = tender('round')
  local e = opening(t, round)
  if e then return e end
  local src = round == '1' and 'bc' or 'o'
  local out = {}
  for _, who in ipairs(redis.call('ZRANGE', P .. 'bz', start,
      start + n - 1)) do
    out[#out + 1] = {who, redis.call('HGET', P .. 'b', who) or '',
      redis.call('HGET', P .. src, who) or '',
      redis.call('HGET', P .. 'sec', who) or '0',
      redis.call('HGET', P .. 'rg', who) or ''}
  end
  return out
end

if op == 'store' then
  local round, start = ARGV[3], ARGV[4]
  local t = tender('round', 'prog')
  local e = opening(t, round)
  if e then return e end
  -- Pages are stored in order, each once.
  if t.prog ~= start then return {'0'} end
  local recs = {}
  for i = 5, #ARGV do recs[#recs + 1] = fields(ARGV[i], 14) end
  for _, f in ipairs(recs) do
    local who, valid, text = f[1], f[2], f[14]
    if text ~= '' then
      redis.call('HSET', P .. 'o', who, text)
      redis.call('HDEL', P .. 'bc', who)
    end
    if f[12] ~= '' then redis.call('HSET', P .. 'rg', who, f[12]) end
    redis.call('HSET', P .. 'e', who, valid .. '|' .. f[3] .. '|' .. f[6] ..
      '|' .. f[7])
    if valid == '1' then redis.call('ZADD', P .. 'rk', f[6], f[7]) end
    gm.emit('sheet', 'id', id, 'round', round, 'supplier', who,
      'valid', valid, 'bid', f[3], 'green', f[4], 'sme', f[5],
      'evaluated', f[6], 'member', f[7], 'smecls', f[8], 'hash', f[9],
      'reasons', f[10], 'checks', f[11], 'noprice', f[13], 'text', text,
      't', I(NOW))
  end
  redis.call('HSET', T, 'prog', I(tonumber(start) + #recs))
  return {I(#recs)}
end

if op == 'finish' then
  local round = ARGV[3]
  local t = tender('round', 'am', 'evs', 'lead', 'ver', 'dl', 'pub', 'nb',
    'seed', 'evat', 'aw')
  local e = opening(t, round)
  if e then return e end
  local nvalid = redis.call('ZCARD', P .. 'rk')
  local low = redis.call('ZRANGE', P .. 'rk', 0, 0, 'WITHSCORES')
  t.id, t.nvalid = id, I(nvalid)
  if nvalid == 0 then
    t.st, t.reason = 'unsuccessful', 'no valid bid'
    ended(id)
  elseif t.am == '1' then
    t.st = 'scoring'
  else
    t.st = 'evaluated'
  end
  redis.call('HSET', T, 'st', t.st, 'nvalid', t.nvalid, 'reason',
    t.reason or '', 'upd', I(NOW))
  gm.emit('evaluated', 'id', id, 'round', round, 'seed', t.seed,
    'evat', t.evat, 'nb', t.nb, 'nvalid', t.nvalid, 'lowest', low[2] or '0',
    'method', t.am, 't', I(NOW))
  tender_emit(t.st == 'unsuccessful' and 'unsuccessful' or 'evaluated', t)
  return {t.st, t.nvalid, (t.st == 'scoring' and complete(t)) and '1' or '0'}
end

if op == 'score' then
  local t = tender('round', 'evs', 'pw', 'nvalid', 'am', 'dl')
  -- Say why nothing can be scored now, and what comes next.
  if t and t.st ~= 'scoring' then
    -- (a draft has no am or dl yet: they are set at publish)
    if t.st == 'draft' then
      return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is a draft: ' ..
        'publish it; the committee scores its valid bids once they are ' ..
        'opened at its bid deadline')
    end
    local why
    if t.st == 'cancelled' or t.st == 'unsuccessful' or
        t.st == 'complete' then
      why = 'it has ended: nothing is scored'
    elseif t.am ~= '1' then
      why = 'it has no committee: its bids are ranked by the lowest ' ..
        'evaluated price'
    elseif t.st == 'active' or t.st == 'opening' then
      why = 'the committee scores its valid bids once they are opened ' ..
        'at the bid deadline, ' .. when(tonumber(t.dl)) .. ' (Asia/Shanghai)'
    else
      why = 'the committee\'s scores were final when the bids were ' ..
        'ranked; an upheld challenge\'s re-evaluation opens a new round ' ..
        'of scoring'
    end
    return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' .. t.st ..
      '; ' .. why)
  end
  local e = scoring(t)
  if e then return e end
  if not inlist(t.evs, WHO) then
    return rej('PERMISSION_DENIED', WHO .. ' is not on the evaluation ' ..
      'committee of tender ' .. id)
  end
  local max = 10000 - tonumber(t.pw)
  local recs = {}
  for i = 3, #ARGV do recs[#recs + 1] = fields(ARGV[i], 2) end
  for _, f in ipairs(recs) do
    local who, s = f[1], tonumber(f[2])
    local ev = redis.call('HGET', P .. 'e', who)
    if not ev or string.sub(ev, 1, 1) ~= '1' then
      return rej('INVALID_ARGUMENT', who .. ' has no valid bid on tender ' ..
        id .. '; score only the bids the sheet shows as valid')
    end
    if s > max then
      return rej('INVALID_ARGUMENT', 'score ' .. string.format('%.2f',
        s / 100) .. ' for ' .. who .. ' is above the ' ..
        string.format('%.2f', max / 100) .. ' points the other criteria ' ..
        'carry (100 less the price weight)')
    end
  end
  local sc, scn = P .. 'sc:' .. t.round, P .. 'scn:' .. t.round
  for _, f in ipairs(recs) do
    local who, s = f[1], f[2]
    if redis.call('HSET', sc, WHO .. '|' .. who, s) == 1 then
      redis.call('HINCRBY', scn, WHO, 1)
    end
    gm.emit('techscore', 'id', id, 'round', t.round, 'evaluator', WHO,
      'supplier', who, 'score', s, 't', I(NOW))
  end
  redis.call('HINCRBY', T, 'scv', 1)
  local mine = tonumber(redis.call('HGET', scn, WHO) or '0')
  local done = complete(t)
  if done then gm.deadline('rank', id, NOW) end
  return {I(#recs), I(tonumber(t.nvalid) - mine), done and '1' or '0',
    t.round}
end

if op == 'rinfo' then
  local t = tender('round', 'evs', 'nvalid')
  if not t then return {'gone'} end
  return {t.st, t.round or '0',
    (t.st == 'scoring' and complete(t)) and '1' or '0'}
end

if op == 'tpage' then
  local round, start, n = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  local t = tender('round', 'evs', 'nvalid', 'pw')
  local e = scoring(t, round)
  if e then return e end
  if not complete(t) then
    return rej('FAILED_PRECONDITION', 'the committee has not scored every ' ..
      'valid bid of tender ' .. id .. ' yet')
  end
  local low = redis.call('ZRANGE', P .. 'rk', 0, 0, 'WITHSCORES')
  local r = redis.call('ZRANGE', P .. 'rk', start, start + n - 1,
    'WITHSCORES')
  local out = {{low[2] or '0', t.pw, redis.call('HGET', T, 'scv') or '0'}}
  local sc = P .. 'sc:' .. round
  for i = 1, #r, 2 do
    local m = r[i]
    local who = string.match(m, '^%d+|%x+|(.*)$')
    local row = {who, m, r[i + 1]}
    for ev in string.gmatch(t.evs, '[^,]+') do
      row[#row + 1] = redis.call('HGET', sc, ev .. '|' .. who) or '0'
    end
    out[#out + 1] = row
  end
  return out
end

if op == 'tstore' then
  local round = ARGV[3]
  local t = tender('round', 'evs', 'nvalid', 'scv')
  local e = scoring(t, round)
  if e then return e end
  if (t.scv or '0') ~= ARGV[4] then return {'stale'} end
  local recs = {}
  for i = 5, #ARGV do recs[#recs + 1] = fields(ARGV[i], 5) end
  for _, f in ipairs(recs) do
    redis.call('ZADD', P .. 'rt', 10000 - tonumber(f[4]), f[5])
    gm.emit('score', 'id', id, 'round', round, 'supplier', f[1],
      'price', f[2], 'tech', f[3], 'total', f[4], 't', I(NOW))
  end
  return {I(#recs)}
end

if op == 'tfinish' then
  local round = ARGV[3]
  local t = tender('round', 'lead', 'ver', 'dl', 'pub', 'nb', 'aw', 'scv')
  local e = scoring(t, round)
  if e then return e end
  if (t.scv or '0') ~= ARGV[4] then return {'stale'} end
  gm.deadline_cancel('rank', id)
  t.id, t.st = id, 'evaluated'
  redis.call('HSET', T, 'st', 'evaluated', 'upd', I(NOW))
  tender_emit('ranked', t)
  return {'evaluated'}
end

return rej('INTERNAL', 'open: unknown op ' .. tostring(op))
