-- dir: the directory, under the tag "dir": banks and the participants who
-- act for them, products, the catalogue and the calendar the centre
-- loaded, and the referral counter.  Read by every referral call before
-- or after its referral's own step (one tag per step); the rules that
-- read this data (screening, working days) are in C (rules.c), which gets
-- the data from these ops.
-- Keys (P = "gm:{finance:dir}:"):
--   P.banks    HASH bank id -> "created ms|name"
--   P.bm:<b>   SET  participants acting for bank b
--   P.member   HASH participant -> bank
--   P.inv      HASH participant -> "bank|offered ms|expires ms|by" (by:
--              the centre's participant): the bank the centre linked it
--              to, until it accepts (bank join), the centre withdraws the
--              offer or it expires (OFFER_MS after it was made, the
--              setting link_offer_days).  An expired offer is removed by
--              its deadline 'offer' (id: the participant) and by every
--              link op (a deadline that fires late).  A deadline that
--              fires before the stored expiry (a broker whose clock is
--              behind the one that made the offer) sets itself again at
--              the expiry.  An offer an older release stored ("bank"
--              alone: made before offers expired, or by an old broker
--              during a rolling upgrade) is pending: the next write op
--              that reads offers (link, bank, offer_expire, offers_restamp)
--              re-stamps it as "bank|0|now + OFFER_MS|" (offered when and
--              by whom not kept) with its deadline; until then the
--              listing shows it with expires 0.
--   P.prod     HASH product id -> its record, packed by directory.c
--   P.pname    HASH product id -> name
--   P.pc:<c>   SET  product ids with a class under top class c
--   P.pb:<b>   SET  product ids of bank b
--   P.pret     HASH retired product id -> ms
--   P.pct      HASH product id -> created ms
--   P.cat      HASH code -> "parent\tname\tname_en" (absent: the catalogue
--              shipped in the plugin is in force)
--   P.catm     HASH source, ms, n
--   P.cal      ZSET "<day>\t<h|w|s>\t<note>" by day (s: statutory, a
--              holiday; absent: the calendar
--              shipped in the plugin)
--   P.calm     HASH source, ms
--   P.seq      STRING the last referral number
--   P.uscc     HASH unified social credit code -> the participant whose
--              enterprise profile holds it (one enterprise, one profile:
--              nobody registers another's code and is shown to banks as
--              that enterprise).  Profiles registered before this index
--              hold their code unclaimed until they register again.
-- ARGV, by op:
--   'screen', top class, sub-item, calendar from day, to day
--       -> {{catalogue loaded 0|1, entry of the sub-item or ''},
--           {id, record, retired 0|1, ...} of the class's products,
--           {{bank, member...}, ...} of their banks, calendar (as below)}
--   'take' -> the next referral id
--   'uscc_claim', code, participant, centre (0|1) -> {code, participant,
--       claimed ms}:
--       claims the code for the participant's profile, refused when
--       another participant's profile holds it (the centre is told whose)
--   'uscc_holder', code -> {participant or '', claimed ms ('0': unknown),
--       now ms, '1' when the claim is a minute old (else '0')}
--   'uscc_take', code, participant, holder, centre (0|1), claimed ms,
--       now ms (both from uscc_holder) -> as uscc_claim: takes a claim of
--       `holder` whose profile does not hold the code (enterprise.c
--       checked after uscc_holder), the claim uscc_holder saw, which was
--       a minute old when uscc_holder ran
--   'uscc_free', code, participant -> {code}: the participant's profile
--       no longer holds the code (it registered another)
--   'caller', participant -> {bank, member...} or {}
--   'members', bank... -> {{bank, member...}, ...}
--   'calendar', from day, to day -> {loaded 0|1, source, ms,
--       day, h|w|s, note, ...}
--   'bank', id, name | 'banks' -> {{id, created, name, {member...},
--       {who, offered ms, expires ms, by, ...} pending offers}, ...}
--       (offered 0: stored by an older release; expires 0 in 'banks'
--       only: not re-stamped yet)
--   'offers_restamp' -> as 'banks', after re-stamping the offers an older
--       release stored (bank.list runs it when 'banks' shows one)
--   'link', participant, bank ("" unlinks), 'offer' (the centre),
--       'accept' (the participant) or 'withdraw' (the centre: its offer to
--       participant, bank ignored) -> {bank row as 'banks'}; unlinked:
--       {bank row} of the bank it acted for (its staff now), {} if none
--   'offer_expire', participant (the deadline) -> {} 
--   'product', id, bank, record, name, top classes "1,3", codes,
--       codes the built-in catalogue lacks
--   'retire', id | 'products', bank ("" all) -> {{id, record, name,
--       retired ms or '', created ms}, ...}
--   'catalogue_load', source, "code\tparent\tname\tname_en\n"...
--   'catalogue' -> {loaded 0|1, source, ms, {code, parent, name, en}...}
--   'calendar_load', source, from day, to day, "day\th|w|s\tnote\n" (s: statutory)...
local op = ARGV[1]

local function members(bank)
  local t = {bank}
  for _, m in ipairs(redis.call('SMEMBERS', P .. 'bm:' .. bank)) do
    t[#t + 1] = m
  end
  return t
end

local function calendar(from, to)
  local m = redis.call('HMGET', P .. 'calm', 'source', 'ms')
  if not m[2] then return {'0', '', '0'} end
  local out = {'1', m[1] or '', m[2]}
  for _, e in ipairs(redis.call('ZRANGEBYSCORE', P .. 'cal', from, to)) do
    local d, k, note = string.match(e, '^(%d+)\t(%a)\t(.*)$')
    if d then out[#out + 1], out[#out + 2], out[#out + 3] = d, k, note end
  end
  return out
end

-- {id, record, name, retired ms or '', created ms}
local function product(id)
  return {id, redis.call('HGET', P .. 'prod', id) or '',
    redis.call('HGET', P .. 'pname', id) or '',
    redis.call('HGET', P .. 'pret', id) or '',
    redis.call('HGET', P .. 'pct', id) or '0'}
end

-- An offer in P.inv: bank, offered ms, expires ms, by, old.  old: stored
-- by an older release, the bank alone; it is pending, and expires as a
-- re-stamp now would make it: bank, 0, NOW + OFFER_MS, '', true.
local function offer_parse(v)
  if not v then return nil end
  local bank, at, exp, by = string.match(v, '^([^|]*)|(%d+)|(%d+)|(.*)$')
  if not bank then return v, 0, NOW + OFFER_MS, '', true end
  return bank, tonumber(at), tonumber(exp), by, false
end

-- Re-stamps participant who's offer v if an older release stored it (the
-- bank alone): pending from now for OFFER_MS, with its deadline (a write
-- op only, on a path that is not refused: a refused run sets no deadline).
local function offer_restamp(who, v)
  local bank, _, exp, _, old = offer_parse(v)
  if not old then return end
  redis.call('HSET', P .. 'inv', who, bank .. '|0|' .. I(exp) .. '|')
  gm.deadline('offer', who, exp)
end

-- The pending (unexpired) offers, by bank: {bank = {who, offered,
-- expires, by, ...}}, each bank's by participant (an old one not
-- re-stamped yet: expires 0).
local function offers_by_bank()
  local rows, flat = {}, redis.call('HGETALL', P .. 'inv')
  for i = 1, #flat, 2 do
    local bank, at, exp, by, old = offer_parse(flat[i + 1])
    if exp > NOW then
      rows[bank] = rows[bank] or {}
      table.insert(rows[bank], {flat[i], at, old and 0 or exp, by})
    end
  end
  local out = {}
  for bank, list in pairs(rows) do
    table.sort(list, function(x, y) return x[1] < y[1] end)
    local t = {}
    for _, o in ipairs(list) do
      t[#t + 1], t[#t + 2], t[#t + 3], t[#t + 4] = o[1], I(o[2]), I(o[3]), o[4]
    end
    out[bank] = t
  end
  return out
end

-- {id, created, name, {member...}, {offers}} (offers: offers_by_bank(),
-- read once for a listing)
local function bank_row(id, rec, offers)
  local ct, name = string.match(rec, '^(%d+)|(.*)$')
  local m = members(id)
  table.remove(m, 1)
  table.sort(m)
  return {id, ct, name, m, (offers or offers_by_bank())[id] or {}}
end

-- Removes the offers that expired and re-stamps the ones an older
-- release stored (a write op only, on a path that is not refused).
local function offers_sweep()
  local flat = redis.call('HGETALL', P .. 'inv')
  for i = 1, #flat, 2 do
    local _, _, exp, _, old = offer_parse(flat[i + 1])
    if old then
      offer_restamp(flat[i], flat[i + 1])
    elseif exp <= NOW then
      redis.call('HDEL', P .. 'inv', flat[i])
      gm.deadline_cancel('offer', flat[i])
    end
  end
end

local function bank_missing(bank)
  return rej('NOT_FOUND', 'no bank ' .. bank .. '; the centre creates it ' ..
    'first: gm finance bank create ' .. bank .. ' --name NAME')
end

if op == 'screen' then
  local cls, sub = ARGV[2], ARGV[3]
  local cat = {'0', ''}
  if redis.call('EXISTS', P .. 'catm') == 1 then
    cat = {'1', redis.call('HGET', P .. 'cat', sub) or ''}
  end
  local prods, banks, seen = {}, {}, {}
  local ids = redis.call('SORT_RO', P .. 'pc:' .. cls, 'ALPHA')
  if #ids > 0 then
    local recs = redis.call('HMGET', P .. 'prod', unpack(ids))
    local ret = redis.call('HMGET', P .. 'pret', unpack(ids))
    for i = 1, #ids do
      if recs[i] then
        prods[#prods + 1], prods[#prods + 2], prods[#prods + 3] =
          ids[i], recs[i], ret[i] and '1' or '0'
        local bank = string.match(recs[i], '^([^|]*)|')
        if bank and not seen[bank] and not ret[i] then
          seen[bank] = true
          banks[#banks + 1] = members(bank)
        end
      end
    end
  end
  return {cat, prods, banks, calendar(tonumber(ARGV[4]), tonumber(ARGV[5]))}
end

local function uscc_held(code, cur, centre)
  return rej('ALREADY_EXISTS', 'unified social credit code ' .. code ..
    ' is in the profile of ' .. (centre and ('participant ' .. cur) or
    'another participant') .. ': an enterprise has one profile, so ' ..
    'nobody is shown to banks as another enterprise; ' .. (centre and
    ('if the code is not ' .. cur .. '\'s, register ' .. cur ..
     '\'s profile with its own code (gm finance enterprise register ' ..
     '--for ' .. cur .. ' --code CODE ...), which frees this one') or
    'check the code; if it is yours, ask the centre to look into it'))
end

if op == 'uscc_claim' then
  local code, who, centre = ARGV[2], ARGV[3], ARGV[4] == '1'
  local cur = redis.call('HGET', P .. 'uscc', code)
  if cur and cur ~= who then return uscc_held(code, cur, centre) end
  redis.call('HSET', P .. 'uscc', code, who)
  redis.call('HSET', P .. 'uscc_t', code, I(NOW))
  return {code, who, I(NOW)}
end

-- Whose claim a code is, since when ('0': before the time was kept), and
-- when this was read.
local USCC_STALE_MS = 60000
if op == 'uscc_holder' then
  local code = ARGV[2]
  local t = redis.call('HGET', P .. 'uscc_t', code) or '0'
  return {redis.call('HGET', P .. 'uscc', code) or '', t, I(NOW),
    NOW - (tonumber(t) or 0) >= USCC_STALE_MS and '1' or '0'}
end

-- A claim its holder's profile does not hold (a profile write that failed
-- after the claim, or two registrations of one participant at once) goes
-- to the caller; else refused as a claim is.  The claim must be the one
-- uscc_holder saw (the holder has not claimed it again since), a minute
-- old when uscc_holder ran, so that the profile read after it came after
-- the profile write of any registration of the holder's: the age is the
-- read's, not this step's, since a retry with the same idempotency key
-- replays both reads as they were.
if op == 'uscc_take' then
  local code, who, was, centre = ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1'
  local seen, read = ARGV[6], tonumber(ARGV[7]) or 0
  local cur = redis.call('HGET', P .. 'uscc', code)
  local t = redis.call('HGET', P .. 'uscc_t', code) or '0'
  if cur and cur ~= who and (cur ~= was or t ~= seen or
                             read - (tonumber(t) or 0) < USCC_STALE_MS) then
    return uscc_held(code, cur, centre)
  end
  redis.call('HSET', P .. 'uscc', code, who)
  redis.call('HSET', P .. 'uscc_t', code, I(NOW))
  return {code, who, I(NOW)}
end

if op == 'uscc_free' then
  local code, who = ARGV[2], ARGV[3]
  if redis.call('HGET', P .. 'uscc', code) == who then
    redis.call('HDEL', P .. 'uscc', code)
    redis.call('HDEL', P .. 'uscc_t', code)
  end
  return {code}
end

if op == 'take' then
  return string.format('R%08d', redis.call('INCR', P .. 'seq'))
end

if op == 'caller' then
  local bank = redis.call('HGET', P .. 'member', ARGV[2])
  if not bank then return {} end
  return members(bank)
end

if op == 'members' then
  local out = {}
  for i = 2, #ARGV do out[#out + 1] = members(ARGV[i]) end
  return out
end

if op == 'calendar' then
  return calendar(tonumber(ARGV[2]), tonumber(ARGV[3]))
end

if op == 'bank' then
  local id, name = ARGV[2], ARGV[3]
  local cur = redis.call('HGET', P .. 'banks', id)
  if cur then
    local ct, was = string.match(cur, '^(%d+)|(.*)$')
    if was ~= name then
      return rej('ALREADY_EXISTS', 'bank ' .. id .. ' exists with another ' ..
        'name; choose another id')
    end
  else
    redis.call('HSET', P .. 'banks', id, I(NOW) .. '|' .. name)
    gm.emit('bank', 'bank', id, 'name', name, 't', I(NOW))
  end
  offers_sweep()
  return {bank_row(id, redis.call('HGET', P .. 'banks', id))}
end

if op == 'banks' or op == 'offers_restamp' then
  if op == 'offers_restamp' then offers_sweep() end
  local flat = redis.call('HGETALL', P .. 'banks')
  local out, offers = {}, offers_by_bank()
  for i = 1, #flat, 2 do
    out[#out + 1] = bank_row(flat[i], flat[i + 1], offers)
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

if op == 'offer_expire' then
  local who = ARGV[2]
  local v = redis.call('HGET', P .. 'inv', who)
  if not v then return {} end -- accepted, withdrawn or unlinked
  local _, _, exp, _, old = offer_parse(v)
  if old then
    -- An old broker offered again over a new offer (rolling upgrade): it
    -- runs from now.
    offer_restamp(who, v)
  elseif exp <= NOW then
    redis.call('HDEL', P .. 'inv', who)
  else
    -- Fired before the stored expiry (a newer offer moved the deadline,
    -- or this broker's clock is behind the one that made the offer): it
    -- fires again then, rather than being dropped with the offer pending.
    gm.deadline('offer', who, exp)
  end
  return {}
end

if op == 'link' then
  -- The centre names who acts for a bank (an offer, P.inv); the staff
  -- member accepts it with its own call, which proves that it is
  -- registered and holds the bank role (the host checks the caller's
  -- roles, and a plugin has no way to read another participant's).
  -- Only then does it see the bank's queue and private events.
  local who, bank, mode = ARGV[2], ARGV[3], ARGV[4]
  -- An offer an older release stored (the bank alone) is pending; the
  -- sweep on the paths that succeed re-stamps it.
  local ob, _, oexp = offer_parse(redis.call('HGET', P .. 'inv', who))
  if mode == 'accept' and ob == bank and oexp <= NOW and
      redis.call('HGET', P .. 'member', who) ~= bank then
    return rej('FAILED_PRECONDITION', 'the centre\'s offer to link you (' ..
      who .. ') to bank ' .. bank .. ' expired at ' .. stamp(oexp) ..
      ' Asia/Shanghai (an offer lasts ' ..
      I(OFFER_MS / DAY_MS) .. ' days); ask the centre for a new one: gm ' ..
      'finance bank link ' .. who .. ' ' .. bank)
  end
  if mode == 'withdraw' then
    if not ob or oexp <= NOW then
      return rej('NOT_FOUND', 'there is no pending offer to ' .. who ..
        ' (it was accepted, withdrawn or expired); gm finance bank list ' ..
        'shows the pending ones')
    end
    offers_sweep()
    redis.call('HDEL', P .. 'inv', who)
    gm.deadline_cancel('offer', who)
    local rec = redis.call('HGET', P .. 'banks', ob)
    return rec and {bank_row(ob, rec)} or {}
  end
  if bank ~= '' and redis.call('HEXISTS', P .. 'banks', bank) == 0 then
    return bank_missing(bank)
  end
  local was = redis.call('HGET', P .. 'member', who)
  if bank == '' then
    offers_sweep()
    if redis.call('HDEL', P .. 'inv', who) == 1 then
      gm.deadline_cancel('offer', who)
    end
    if was then
      redis.call('SREM', P .. 'bm:' .. was, who)
      redis.call('HDEL', P .. 'member', who)
      gm.emit('link', 'who', who, 'bank', '', 't', I(NOW))
      local rec = redis.call('HGET', P .. 'banks', was)
      if rec then return {bank_row(was, rec)} end
    end
    return {}
  end
  local row = function()
    return {bank_row(bank, redis.call('HGET', P .. 'banks', bank))}
  end
  if was == bank then
    offers_sweep()
    return row()
  end
  if was then
    return rej('FAILED_PRECONDITION', who .. ' acts for bank ' .. was ..
      '; unlink it first (gm finance bank unlink ' .. who .. '), then ' ..
      'link it to ' .. bank)
  end
  if mode == 'offer' then
    -- A new offer replaces a pending one (to this bank or another) and
    -- runs from now.
    offers_sweep()
    redis.call('HSET', P .. 'inv', who, bank .. '|' .. I(NOW) .. '|' ..
      I(NOW + OFFER_MS) .. '|' .. gm.participant)
    gm.deadline('offer', who, NOW + OFFER_MS)
    return row()
  end
  local inv = ob and oexp > NOW and ob or nil
  if inv ~= bank then
    return rej('FAILED_PRECONDITION', 'the centre has no pending offer to ' ..
      'link you (' .. who .. ') to bank ' .. bank .. (inv and
      ('; it offered you bank ' .. inv .. ': gm finance bank join ' .. inv) or
      '; ask it to link you: gm finance bank link ' .. who .. ' ' .. bank))
  end
  offers_sweep()
  redis.call('HDEL', P .. 'inv', who)
  gm.deadline_cancel('offer', who)
  redis.call('HSET', P .. 'member', who, bank)
  redis.call('SADD', P .. 'bm:' .. bank, who)
  gm.emit('link', 'who', who, 'bank', bank, 't', I(NOW))
  return row()
end

if op == 'product' then
  local id, bank, rec, name = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
  if redis.call('HEXISTS', P .. 'banks', bank) == 0 then
    return bank_missing(bank)
  end
  -- The catalogue the centre loaded decides; without one, C's answer from
  -- the catalogue shipped in the plugin.
  local missing = ARGV[8]
  if redis.call('EXISTS', P .. 'catm') == 1 then
    local m = {}
    for _, code in ipairs(split(ARGV[7], ',')) do
      if redis.call('HEXISTS', P .. 'cat', code) == 0 then m[#m + 1] = code end
    end
    missing = table.concat(m, ', ')
  end
  if missing ~= '' then
    return rej('INVALID_ARGUMENT', 'classes ' .. missing .. ' are not in ' ..
      'the Green Industry Guidance Catalogue in force; gm finance catalogue ' ..
      'lists its codes')
  end
  local cur = redis.call('HGET', P .. 'prod', id)
  -- Screening reads every product of a class in one step: the cap keeps
  -- that step bounded.
  if not cur and redis.call('HLEN', P .. 'prod') >= MAX_PRODUCTS then
    return rej('RESOURCE_EXHAUSTED', 'the directory holds ' ..
      I(MAX_PRODUCTS) .. ' products, the most it takes (retired ones ' ..
      'count): FINANCE_MAX_PRODUCTS in plugins/finance/finance.h sets it')
  end
  if cur and (cur ~= rec or redis.call('HGET', P .. 'pname', id) ~= name) then
    return rej('ALREADY_EXISTS', 'product ' .. id .. ' exists with other ' ..
      'terms; retire it and create the new terms under another id')
  end
  if not cur then
    redis.call('HSET', P .. 'prod', id, rec)
    redis.call('HSET', P .. 'pname', id, name)
    redis.call('HSET', P .. 'pct', id, I(NOW))
    for _, c in ipairs(split(ARGV[6], ',')) do
      redis.call('SADD', P .. 'pc:' .. c, id)
    end
    redis.call('SADD', P .. 'pb:' .. bank, id)
    gm.emit('product', 'id', id, 'rec', rec, 'name', name, 't', I(NOW))
  end
  return {product(id)}
end

if op == 'retire' then
  local id = ARGV[2]
  local rec = redis.call('HGET', P .. 'prod', id)
  if not rec then
    return rej('NOT_FOUND', 'no product ' .. id .. '; gm finance product ' ..
      'list lists them')
  end
  if redis.call('HSETNX', P .. 'pret', id, I(NOW)) == 1 then
    gm.emit('retire', 'id', id, 't', I(NOW))
  end
  return {product(id)}
end

if op == 'products' then
  local ids
  if ARGV[2] ~= '' then
    ids = redis.call('SORT_RO', P .. 'pb:' .. ARGV[2], 'ALPHA')
  else
    ids = redis.call('HKEYS', P .. 'prod')
    table.sort(ids)
  end
  local out = {}
  for _, id in ipairs(ids) do
    if redis.call('HEXISTS', P .. 'prod', id) == 1 then
      out[#out + 1] = product(id)
    end
  end
  return out
end

if op == 'catalogue_load' then
  -- HSET in chunks: unpack() takes a few thousand values at most.
  redis.call('DEL', P .. 'cat')
  local args, n = {'HSET', P .. 'cat'}, 0
  for code, rest in string.gmatch(ARGV[3], '([^\t\n]+)\t([^\n]*)\n') do
    args[#args + 1], args[#args + 2] = code, rest
    n = n + 1
    if #args >= 1000 then
      redis.call(unpack(args))
      args = {'HSET', P .. 'cat'}
    end
  end
  if #args > 2 then redis.call(unpack(args)) end
  redis.call('HSET', P .. 'catm', 'source', ARGV[2], 'ms', I(NOW), 'n', I(n))
  gm.emit('catalogue', 'source', ARGV[2], 'n', I(n), 't', I(NOW))
  return {'1', ARGV[2], I(NOW), n}
end

if op == 'catalogue' then
  local m = redis.call('HMGET', P .. 'catm', 'source', 'ms')
  if not m[2] then return {'0', '', '0'} end
  local out = {'1', m[1] or '', m[2]}
  local flat = redis.call('HGETALL', P .. 'cat')
  for i = 1, #flat, 2 do
    local parent, name, en = string.match(flat[i + 1], '^([^\t]*)\t([^\t]*)\t(.*)$')
    out[#out + 1] = {flat[i], parent or '', name or '', en or ''}
  end
  return out
end

if op == 'calendar_load' then
  local from, to = tonumber(ARGV[3]), tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', P .. 'cal', from, to)
  local n = 0
  for line in string.gmatch(ARGV[5], '([^\n]+)\n') do
    local d = string.match(line, '^(%d+)\t')
    if d then
      redis.call('ZADD', P .. 'cal', tonumber(d), line)
      n = n + 1
    end
  end
  redis.call('HSET', P .. 'calm', 'source', ARGV[2], 'ms', I(NOW))
  gm.emit('calendar', 'source', ARGV[2], 'from', I(from), 'to', I(to),
    'n', I(n), 't', I(NOW))
  return {'1', ARGV[2], I(NOW), n}
end

return rej('INVALID_ARGUMENT', 'unknown directory op ' .. tostring(op))
