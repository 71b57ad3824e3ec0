-- tender: drafting, joint demand, publishing, amendments, cancellation and
-- the bid security register of one tender (tag t:<id>).  C builds and
-- checks the definition; these steps guard who may change what, when.
--   ARGV[1] = op, ARGV[2] = tender id, then:
--   draft    def buyers title rev
--   demand   items (base64) rev  -> draft rev replaced(1|0)
--   (rev: the draft's revision when C checked the items' budgets against
--   the budget, '' for no tender, 'none' for none to a demand: the step is
--   refused if the draft changed since)
--   get      -
--   publish  rev def dl cur budget items sec bond am pw evs title min_ms
--            min_text earliest (for a period on the calendar: its end, or '')
--   amend    ver def dl budget items sec bond title fields note min_ms
--            min_text
--   (min_ms: the shortest bidding period from the publication, which C
--   counts on the calendar for a request for quotations; min_text names it)
--   cancel   reason
--   security supplier amount reference  -> amount required currency
--   arcinfo  -                  state and last change, to check the ledger
--   archive  state upd budget   removes the ended tender's keys, at most
--                               `budget` of them per run (evaluate.c-like
--                               steps driven by the archive deadline)
--   later    due ms             the archive deadline being fired moves to
--                               due (the ledger is behind, or more to do)
--   rearm    -                  an ended tender without an archive deadline
--                               gets one, due now (the sweep, archive.c)
-- arcinfo, archive, later and rearm run by the twin tender.free, which Redis runs
-- over maxmemory (procurement.c): they free memory, and must never write
-- more than they free.
local op, id = ARGV[1], ARGV[2]
local FIELDS = {'id', 'st', 'lead', 'buyers', 'title', 'cur', 'budget', 'dl',
  'items', 'sec', 'bond', 'am', 'pw', 'evs', 'ver', 'pub', 'rev', 'def',
  'closed', 'round', 'seed', 'evat', 'nb', 'nvalid', 'aw', 'chopen', 'reason',
  'upd'}

local function lead_only(t, what)
  if t.lead ~= WHO then
    return rej('PERMISSION_DENIED', 'only ' .. t.lead .. ', the agency that ' ..
      'drafted tender ' .. id .. ', may ' .. what .. ' it')
  end
end
-- t must carry dl (every caller loads it).
local function state_text(t)
  if t.st == 'active' then
    return 'open for bids until ' .. when(tonumber(t.dl))
  end
  return t.st
end

if op == 'draft' then
  -- An ended tender being archived reads as gone, but its id stays its own.
  local a = redis.call('HMGET', T, 'arch', 'lead', 'buyers', 'pub')
  if a[1] then
    if hidden(a[2], a[3], a[4]) then
      return rej('ALREADY_EXISTS', 'tender id ' .. id .. ' is taken; ' ..
        'choose another id')
    end
    return rej('FAILED_PRECONDITION', 'tender id ' .. id .. ' is of a ' ..
      'tender that ended and is being archived; choose another id')
  end
  local t = tender('lead', 'rev', 'dl')
  if not t and redis.call('HEXISTS', T, 'st') == 1 then
    -- Another agency's draft, which this caller may not know of: its id
    -- is taken, and nothing more is said.
    return rej('ALREADY_EXISTS', 'tender id ' .. id .. ' is taken; ' ..
      'choose another id')
  end
  if t then
    if t.st ~= 'draft' then
      return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' ..
        state_text(t) .. '; a published tender changes by gm procurement amend ' ..
        '(tender.amend)')
    end
    local e = lead_only(t, 'redraft')
    if e then return e end
  end
  if ARGV[6] and (t and t.rev or '') ~= ARGV[6] then
    return rej('FAILED_PRECONDITION', 'the draft of tender ' .. id ..
      ' changed while it was being redrafted (a joint buyer sent its ' ..
      'demand); draft it again')
  end
  local rev = t and tonumber(t.rev) + 1 or 1
  redis.call('HSET', T, 'id', id, 'st', 'draft', 'lead', WHO,
    'def', ARGV[3], 'buyers', ARGV[4], 'title', ARGV[5], 'rev', I(rev),
    'ver', '0', 'upd', I(NOW))
  tender_emit('drafted', {id = id, st = 'draft', lead = WHO, ver = '0'},
    ARGV[3])
  return {'draft', I(rev)}
end

if op == 'demand' then
  local t = tender('lead', 'buyers', 'rev', 'dl')
  if not t then return no_tender(id) end
  if t.st ~= 'draft' then
    return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' ..
      state_text(t) .. '; demand joins a tender while it is a draft')
  end
  if not inlist(t.buyers, WHO) then
    return rej('PERMISSION_DENIED', WHO .. ' is not one of the joint ' ..
      'buyers of tender ' .. id .. '; ask ' .. t.lead .. ' to add you')
  end
  if ARGV[4] and t.rev ~= ARGV[4] then
    return rej('FAILED_PRECONDITION', 'the draft of tender ' .. id ..
      ' changed while your demand was being checked (' .. t.lead ..
      ' redrafted it, or another buyer sent its demand); send it again')
  end
  local rev = tonumber(t.rev) + 1
  -- A buyer's demand is all it needs: a second one replaces the first
  -- (the reply says so).
  local replaced = redis.call('HSET', P .. 'dm', WHO, ARGV[3]) == 0
  redis.call('HSET', T, 'rev', I(rev), 'upd', I(NOW))
  gm.emit('demand', 'id', id, 'buyer', WHO, 't', I(NOW))
  return {'draft', I(rev), replaced and '1' or '0'}
end

if op == 'get' then
  if redis.call('HEXISTS', T, 'arch') == 1 then return {'archived'} end
  local t = redis.call('HMGET', T, unpack(FIELDS))
  if not t[2] then return {} end
  for i = 1, #t do t[i] = t[i] or '' end
  return {t, redis.call('HGETALL', P .. 'dm'), redis.call('HGETALL', P .. 'am')}
end

if op == 'publish' then
  local t = tender('lead', 'rev', 'dl')
  if not t then return no_tender(id) end
  local e = lead_only(t, 'publish')
  if e then return e end
  if t.st ~= 'draft' then
    return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' ..
      state_text(t) .. ' already')
  end
  if t.rev ~= ARGV[3] then
    return rej('FAILED_PRECONDITION', 'the draft of tender ' .. id ..
      ' changed while it was being published (a joint buyer added its ' ..
      'demand); publish it again')
  end
  local dl, min = tonumber(ARGV[5]), tonumber(ARGV[15])
  -- Counted on the calendar, the period ends at a fixed time (C's clock
  -- may be a few ms behind this run's).
  if ARGV[17] ~= '' then min = tonumber(ARGV[17]) - NOW end
  if dl <= NOW or dl - NOW < min then
    return rej('INVALID_ARGUMENT', 'the bid deadline ' .. when(dl) ..
      (dl <= NOW and ' has passed' or ' leaves suppliers less than the ' ..
       ARGV[16] .. ' the law gives them') ..
      '; set it after ' .. when(NOW + min) .. ' (Asia/Shanghai)')
  end
  redis.call('HSET', T, 'st', 'active', 'def', ARGV[4], 'dl', ARGV[5],
    'cur', ARGV[6], 'budget', ARGV[7], 'items', ARGV[8], 'sec', ARGV[9],
    'bond', ARGV[10], 'am', ARGV[11], 'pw', ARGV[12], 'evs', ARGV[13],
    'title', ARGV[14], 'ver', '1', 'pub', I(NOW), 'round', '0', 'aw', '0',
    'chopen', '0', 'chn', '0', 'bseq', '0', 'upd', I(NOW))
  gm.deadline('open', id, dl)
  tender_emit('published', {id = id, st = 'active', lead = t.lead, ver = '1',
    dl = ARGV[5], pub = I(NOW)}, ARGV[4])
  return {'active', '1', I(NOW)}
end

if op == 'amend' then
  local t = tender('lead', 'ver', 'dl', 'pub')
  if not t then return no_tender(id) end
  local e = lead_only(t, 'amend')
  if e then return e end
  if t.st ~= 'active' or NOW >= tonumber(t.dl) then
    return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' ..
      (t.st == 'active' and 'past its bid deadline' or t.st) ..
      '; amendments are made before the bid deadline')
  end
  if t.ver ~= ARGV[3] then
    return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' was amended ' ..
      'meanwhile (now version ' .. t.ver .. '); read it and amend again')
  end
  local dl, min = tonumber(ARGV[5]), tonumber(ARGV[13])
  if dl <= NOW then
    return rej('INVALID_ARGUMENT', 'the new bid deadline ' .. when(dl) ..
      ' has passed; set one in the future')
  end
  -- The bidding period the law gives counts from the publication.
  if dl - tonumber(t.pub) < min then
    return rej('INVALID_ARGUMENT', 'the new bid deadline ' .. when(dl) ..
      ' leaves suppliers less than the ' .. ARGV[14] ..
      ' from the publication the law gives them; set it after ' ..
      when(tonumber(t.pub) + min) .. ' (Asia/Shanghai)')
  end
  local ver = tonumber(t.ver) + 1
  redis.call('HSET', T, 'def', ARGV[4], 'dl', ARGV[5], 'budget', ARGV[6],
    'items', ARGV[7], 'sec', ARGV[8], 'bond', ARGV[9], 'title', ARGV[10],
    'ver', I(ver), 'upd', I(NOW))
  redis.call('HSET', P .. 'am', I(ver), I(NOW) .. '\n' .. ARGV[11] .. '\n' ..
    ARGV[12])
  if dl ~= tonumber(t.dl) then gm.deadline('open', id, dl) end
  gm.emit('amendment', 'id', id, 'ver', I(ver), 'fields', ARGV[11],
    'note', ARGV[12], 't', I(NOW))
  tender_emit('amended', {id = id, st = 'active', lead = t.lead, ver = I(ver),
    dl = ARGV[5], pub = t.pub}, ARGV[4])
  return {'active', I(ver), I(NOW)}
end

if op == 'cancel' then
  local t = tender('lead', 'ver', 'dl', 'pub', 'round', 'aw', 'nb')
  if not t then return no_tender(id) end
  local e = lead_only(t, 'cancel')
  if e then return e end
  if t.st ~= 'draft' and t.st ~= 'active' and t.st ~= 'evaluated' and
      t.st ~= 'scoring' then
    return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' .. t.st ..
      (t.st == 'opening' and '; cancel it once the evaluation is done' or
       (t.st == 'awarded' and '; an award is undone only by upholding a ' ..
        'challenge' or '; there is nothing to cancel')))
  end
  t.id, t.st, t.reason = id, 'cancelled', ARGV[3]
  redis.call('HSET', T, 'st', 'cancelled', 'reason', ARGV[3], 'upd', I(NOW))
  ended(id)
  tender_emit('cancelled', t)
  return {'cancelled', t.ver}
end

if op == 'security' then
  local t = tender('lead', 'dl', 'sec', 'cur')
  if not t then return no_tender(id) end
  local e = lead_only(t, 'record bid security for')
  if e then return e end
  if t.st ~= 'active' or NOW >= tonumber(t.dl) then
    return rej('FAILED_PRECONDITION', 'bid security is lodged before the ' ..
      'bid deadline; tender ' .. id .. ' is ' .. (t.st == 'active' and
      'past it' or t.st))
  end
  -- 0 records a refund: of security lodged, never a first entry.
  if ARGV[4] == '0' and
      tonumber(redis.call('HGET', P .. 'sec', ARGV[3]) or '0') == 0 then
    return rej('INVALID_ARGUMENT', 'no bid security of ' .. ARGV[3] ..
      ' is recorded for tender ' .. id .. ', so there is nothing to ' ..
      'refund; record the amount it lodged (0 records a refund)')
  end
  redis.call('HSET', P .. 'sec', ARGV[3], ARGV[4])
  gm.emit('security', 'id', id, 'supplier', ARGV[3], 'amount', ARGV[4],
    'ref', ARGV[5], 't', I(NOW))
  return {ARGV[4], t.sec, t.cur}
end

if op == 'arcinfo' then
  local v = redis.call('HMGET', T, 'st', 'upd', 'arch')
  if not v[1] then return {} end
  return {v[1], v[2] or '0', v[3] or ''}
end

-- Deletion runs from the highest award, challenge and round down, keeping
-- where it got to in T (xa xc xr), so each run costs at most `budget`
-- UNLINKs however many there were; T itself goes last.  UNLINK frees a
-- large hash (the bids of a big tender) off Redis's main thread.
if op == 'archive' then
  local v = redis.call('HMGET', T, 'st', 'upd', 'arch', 'aw', 'aw0', 'chn',
    'round', 'xa', 'xc', 'xr')
  if not v[1] then return {'done'} end
  local budget = tonumber(ARGV[5])
  local xa, xc, xr
  if not v[3] then
    if v[1] ~= ARGV[3] or (v[2] or '0') ~= ARGV[4] or
        not (v[1] == 'complete' or v[1] == 'unsuccessful' or
             v[1] == 'cancelled') then
      return {'changed', v[1]}
    end
    xa = math.max(tonumber(v[4] or '0'), tonumber(v[5] or '0'))
    xc, xr = tonumber(v[6] or '0'), tonumber(v[7] or '0')
    redis.call('HSET', T, 'arch', I(NOW))
    gm.emit('archived', 'id', id, 'st', v[1], 't', I(NOW))
  else
    xa, xc, xr = tonumber(v[8]), tonumber(v[9]), tonumber(v[10])
  end
  local n = 0
  while xa > 0 and n < budget do
    local a = P .. 'aw:' .. I(xa)
    for cid in string.gmatch(redis.call('HGET', a, 'ks') or '', '[^,]+') do
      redis.call('UNLINK', P .. 'k:' .. cid)
      n = n + 1
    end
    redis.call('UNLINK', a)
    n, xa = n + 1, xa - 1
  end
  while xc > 0 and n < budget do
    redis.call('UNLINK', P .. 'ch:' .. I(xc))
    n, xc = n + 1, xc - 1
  end
  while xr > 0 and n < budget do
    redis.call('UNLINK', P .. 'sc:' .. I(xr), P .. 'scn:' .. I(xr))
    n, xr = n + 2, xr - 1
  end
  if n >= budget then
    redis.call('HSET', T, 'xa', I(xa), 'xc', I(xc), 'xr', I(xr))
    return {'more', I(n)}
  end
  redis.call('UNLINK', P .. 'dm', P .. 'am', P .. 'sec', P .. 'b',
    P .. 'bc', P .. 'bz', P .. 'o', P .. 'rg', P .. 'e', P .. 'rk',
    P .. 'rt', P .. 'cho', T)
  return {'done', I(n + 13)}
end

-- An ended tender with no archive deadline (ended before the archive
-- existed) gets one now (archive.c's sweep): {'set'} or {'had'}.
if op == 'rearm' then
  local v = redis.call('HMGET', T, 'st', 'arch')
  if (v[1] == 'complete' or v[1] == 'unsuccessful' or
      v[1] == 'cancelled') and not v[2] and
      not gm.deadline_get('archive', id) then
    gm.deadline('archive', id, NOW)
    return {'set'}
  end
  return {'had'}
end
-- The deadline being fired is in the set: moving it adds nothing.
if op == 'later' then
  if redis.call('EXISTS', T) == 1 then
    gm.deadline('archive', id, tonumber(ARGV[3]))
  end
  return {'later'}
end

return rej('INTERNAL', 'tender: unknown op ' .. tostring(op))
