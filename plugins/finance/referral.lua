-- referral: one referral's life, under its own tag (the referral id), so
-- every decision about it (the claim race included) is one atomic step.
-- Keys (P = "gm:{finance:<id>}:"):
--   P.r   HASH the referral (fields below)
--   P.eb  HASH eligible bank -> its fitting products "product/fee_bp,...",
--         fixed at screening
--   P.cl  ZSET the banks that claimed in this round, by claim order
--   P.cp  HASH claimant bank -> "product/fee_bp" it claimed with
--   P.x   SET  banks that missed a deadline (contact or decision): no
--         access any more
--   P.xd  HASH bank that missed -> the deadline it missed (ms)
--   P.xk  HASH bank that missed its decision deadline -> 'decision' (a bank
--         in P.xd alone missed its contact deadline)
--   P.us  SET  versions whose index steps have not all run yet (below)
-- Fields of P.r: id, st (State), v (version: +1 per transition), rnd
--   (round: +1 each time it returns to the pool), maxc (claims allowed),
--   ent (the enterprise's participant), by (who submitted it), uscc,
--   ename, ereg, esize, econ (its profile when submitted), cls, sub, cur,
--   amt, ten, use, desc, co2, coal, certs (one per line), cs, ci
--   (consents 0|1), ct, ut (created, updated ms), pdue (the enterprise
--   picks by then), bank, prod, fee (the holding bank, its product and
--   fee bp), pk (picked ms), cdue (contact due), cx (contacted ms), cnote,
--   ddue (decision due: the bank funds or declines by then; set at
--   contact), dleft (ms of it left while the enterprise answers a question:
--   the decision deadline waits meanwhile), q, ans, aamt, arate, aten, at
--   (approved ms), famt, fdate, ft (funded ms), drc, dtx, dt (decided ms:
--   approved or declined), wr (withdraw reason), er (why it expired), xt
--   (ended ms), arch (ms its archive began: set by 'archive', the keys go
--   with 'drop').
-- Ended (funded, declined, withdrawn, expired), a referral sets its
-- archive|<id> deadline ARCHIVE_MS later (archive.c): 'archive' emits its
-- whole record for the ledger and marks it, 'drop' removes every key above
-- once the ledger holds that record.  Every op but get then refuses it.
-- Deadlines (the host's P.dl): pick|<id> (pdue), contact|<id> (cdue),
-- decision|<id> (ddue; none while info is requested) and
-- sync|<id>: SYNC_MS after each transition, which also adds its version to
-- P.us; 'synced' removes a version once its caller has brought the bank
-- queues and the enterprise's list up to date (index.c) and cancels the
-- deadline when no version is left.  If a broker stopped before, its
-- version stays, even when later transitions finish theirs, and the
-- deadline writes every index from the record ('synced', version, 'all').
--
-- ARGV, by op:
--   'create', pick due, eligible "bank=p/fee,p/fee;bank=...", then field,
--             value pairs (C validated them)
--   'claim', bank, product ("" the first that fits)
--   'pick', bank, contact due, 'unstaffed' when the bank has no active
--             staff (directory.c) else ''
--   'contact', bank, note, decision due (absent from older brokers: none)
--   'ask', bank, question              'answer', text
--   'approve', bank, amount, rate bp, tenor, "product=min bp-max bp;..."
--             (the rate ranges of the bank's products), "product=min-max;"
--             (their tenor ranges in months; absent from older brokers)
--   'fund', bank, amount, date, its day number, the rate ranges as
--             approve's (an older approval is checked again)
--   'decline', bank, reason code, text 'withdraw', reason
--   'expire' (pick deadline)
--   'miss', new pick due, kind: 'contact' (or absent) or 'decision'
--   'dstamp' -> {'set'} | {'had'}: a referral under review with no
--             decision deadline (contact made by an older broker) gets one,
--             ARGV[2] ms from now (the sweep in workflow.c)
--   'get'                              'synced', version, 'all' or ''
--   'arcinfo' -> {} (gone) or {state, version, arch, unsynced versions,
--             its enterprise}
--   'archive', state, version -> {'marked'} | {'changed', state}
--   'drop', version -> {'done'} | {'changed', state}
--   'later', due ms -> {'later'}: the archive deadline being fired moves
--             to due (the ledger is behind)
--   'rearm' -> {'set'} | {'had'}: an ended referral without an archive
--             deadline gets one, due now (the sweep in archive.c)
-- The archive's ops (arcinfo, archive, drop, later) run by the twin
-- referral.free, which Redis runs over maxmemory (reply.c): they free
-- memory, and must never write more than they free.  Not rearm: what it
-- leads to writes more than it frees while Redis is full (reply.c).
-- Reply (every op but synced): {r (P.r flat), eb (flat), claimants in
-- order, cp (flat), excluded, info} where info = {transition, from state}
-- ({'none', ...} when a deadline found nothing due).
local op = ARGV[1]

local function ref_load()
  local r = hash(P .. 'r')
  if not r.id then return nil end
  r.st, r.v = tonumber(r.st), tonumber(r.v)
  return r
end

local function reply(info)
  return {redis.call('HGETALL', P .. 'r'), redis.call('HGETALL', P .. 'eb'),
    redis.call('ZRANGE', P .. 'cl', 0, -1), redis.call('HGETALL', P .. 'cp'),
    redis.call('SMEMBERS', P .. 'x'), info}
end

local NAMES = {}
for k, v in pairs(ST) do NAMES[v] = string.gsub(k, '_', ' ') end
local function sname(st) return NAMES[st] or I(st) end

-- Moves r to state `to`: writes `set` (field, value, ...), emits the
-- transition with `extra` (field, value, ...) for the ledger, and sets the
-- sync deadline.
local function move(r, to, tr, set, extra)
  local from = r.st
  r.v = r.v + 1
  redis.call('SADD', P .. 'us', I(r.v))
  local h = {'HSET', P .. 'r', 'st', I(to), 'v', I(r.v), 'ut', I(NOW)}
  for i = 1, #set do h[#h + 1] = set[i] end
  redis.call(unpack(h))
  local e = {'transition', 'id', r.id, 'tr', tr, 'from', I(from), 'to', I(to),
    'v', I(r.v), 'rnd', r.rnd, 'by', gm.participant, 't', I(NOW)}
  for i = 1, #extra do e[#e + 1] = extra[i] end
  gm.emit(unpack(e))
  gm.deadline('sync', r.id, NOW + SYNC_MS)
  -- Ended: its live record leaves Redis ARCHIVE_MS later (archive.c).
  if to >= ST.funded then gm.deadline('archive', r.id, NOW + ARCHIVE_MS) end
  r.st = to
  return {tr, I(from)}
end

local ID = string.match(P, '{finance:(.*)}')

if op == 'create' then
  if redis.call('EXISTS', P .. 'r') == 1 then
    return rej('ALREADY_EXISTS', 'referral ' .. ID .. ' exists already; ' ..
      'retry with a new idempotency key')
  end
  local h = {'HSET', P .. 'r', 'id', ID, 'st', I(ST.open), 'v', '1', 'rnd', '1',
    'ct', I(NOW), 'ut', I(NOW), 'pdue', ARGV[2]}
  local e = {'referral', 'id', ID, 'st', I(ST.open), 'v', '1', 't', I(NOW),
    'pdue', ARGV[2]}
  for i = 4, #ARGV - 1, 2 do
    h[#h + 1], h[#h + 2] = ARGV[i], ARGV[i + 1]
    e[#e + 1], e[#e + 2] = ARGV[i], ARGV[i + 1]
  end
  local eb, n = {'HSET', P .. 'eb'}, 0
  for bank, prods in string.gmatch(ARGV[3], '([^;=]+)=([^;]*)') do
    eb[#eb + 1], eb[#eb + 2] = bank, prods
    n = n + 1
  end
  redis.call(unpack(h))
  redis.call(unpack(eb))
  redis.call('SADD', P .. 'us', '1')
  e[#e + 1], e[#e + 2] = 'neb', I(n)
  gm.emit(unpack(e))
  gm.deadline('pick', ID, tonumber(ARGV[2]))
  gm.deadline('sync', ID, NOW + SYNC_MS)
  return reply({'created', '0'})
end

local r = ref_load()
if op == 'synced' then
  if ARGV[3] == 'all' then
    for _, v in ipairs(redis.call('SMEMBERS', P .. 'us')) do
      if tonumber(v) <= tonumber(ARGV[2]) then
        redis.call('SREM', P .. 'us', v)
      end
    end
  else
    redis.call('SREM', P .. 'us', ARGV[2])
  end
  if redis.call('SCARD', P .. 'us') == 0 then gm.deadline_cancel('sync', ID) end
  return 0
end

-- The record as one string, for the ledger (archive.c unpacks it): P.r,
-- P.eb, P.cl, P.cp, P.x in turn, each "<count>;" then "<bytes>:<item>"
-- per item.
local function pack(list)
  local o = {I(#list), ';'}
  for i = 1, #list do
    o[#o + 1] = I(#list[i])
    o[#o + 1] = ':'
    o[#o + 1] = list[i]
  end
  return table.concat(o)
end

if op == 'arcinfo' then
  if not r then return {} end
  return {I(r.st), I(r.v), r.arch or '', I(redis.call('SCARD', P .. 'us')),
    r.ent or ''}
end
-- Marks an ended referral archived and hands its record to the ledger
-- (the 'archived' entry); archive.c calls it once the ledger holds the
-- state and version it ended in, passed here.
if op == 'archive' then
  if not r then return {'changed', ''} end
  if r.arch then return {'marked'} end
  if I(r.st) ~= ARGV[2] or I(r.v) ~= ARGV[3] or r.st < ST.funded then
    return {'changed', I(r.st)}
  end
  local rec = pack(redis.call('HGETALL', P .. 'r')) ..
    pack(redis.call('HGETALL', P .. 'eb')) ..
    pack(redis.call('ZRANGE', P .. 'cl', 0, -1)) ..
    pack(redis.call('HGETALL', P .. 'cp')) ..
    pack(redis.call('SMEMBERS', P .. 'x'))
  redis.call('HSET', P .. 'r', 'arch', I(NOW))
  gm.emit('archived', 'id', ID, 'st', I(r.st), 'v', I(r.v), 't', I(NOW),
    'rec', rec)
  return {'marked'}
end
-- Removes every key of a marked referral: seven keys, whatever their size
-- (UNLINK frees a large P.eb off Redis's main thread).
if op == 'drop' then
  if not r then return {'done'} end
  if not r.arch or I(r.v) ~= ARGV[2] then return {'changed', I(r.st)} end
  redis.call('UNLINK', P .. 'eb', P .. 'cl', P .. 'cp', P .. 'x', P .. 'xd',
    P .. 'xk', P .. 'us', P .. 'r')
  return {'done'}
end

-- An ended referral with no archive deadline (ended before the archive
-- existed) gets one now (archive.c's sweep); {'set'} or {'had'}.
if op == 'rearm' then
  if r and r.st >= ST.funded and not r.arch and
      not gm.deadline_get('archive', ID) then
    gm.deadline('archive', ID, NOW)
    return {'set'}
  end
  return {'had'}
end
-- The deadline being fired is in the set: moving it adds nothing.
if op == 'later' then
  if r then gm.deadline('archive', ID, tonumber(ARGV[2])) end
  return {'later'}
end

if not r then
  return rej('NOT_FOUND', 'no referral ' .. ID .. '; check the id (gm finance ' ..
    'referrals lists yours, gm finance queue your bank\'s)')
end
if op == 'get' then return reply({'get', I(r.st)}) end

-- Every change checks who asks first, then the state (need_state), so
-- only a party learns that the referral ended.  Being archived, nothing
-- changes any more (the deadlines' expire and miss find nothing due in
-- an ended referral, below): need_state says so, not naming its state
-- (as archive.c's refusal after the archive).
-- unread: set by an op whose caller cannot read the referral once it
-- ended (a bank it was offered to that does not hold it), so the refusal
-- does not send it to gm finance show, which refuses it.
local unread
local function need_state(what, ...)
  if r.arch then
    return rej('FAILED_PRECONDITION', 'referral ' .. ID .. ' ended and ' ..
      'is being archived: its record moves to the ledger and it can no ' ..
      'longer change' .. (unread and ('; your bank ' .. unread .. ', ' ..
      'which does not hold it, cannot read it') or ('; its parties still ' ..
      'read it (gm finance show ' .. ID .. ')')))
  end
  for _, s in ipairs({...}) do if r.st == s then return nil end end
  local names, last = {}, 0
  for _, s in ipairs({...}) do
    names[#names + 1] = sname(s)
    if s > last then last = s end
  end
  -- Not there yet: the step that comes next, so the user knows what to do.
  local next = {
    [ST.open] = 'banks claim it and the enterprise picks one first',
    [ST.claimed] = 'the enterprise picks a bank first (gm finance pick ' ..
      ID .. ' BANK)',
    [ST.picked] = 'the picked bank records its first contact first ' ..
      '(gm finance contact ' .. ID .. ' NOTE)',
    [ST.under_review] = 'the bank approves it first (gm finance approve ' ..
      ID .. ' --amount YUAN --rate PCT --tenor MONTHS)',
    [ST.info_requested] = 'the enterprise answers the bank\'s question ' ..
      'first (gm finance answer ' .. ID .. ' TEXT)',
  }
  local how = r.st < last and next[r.st]
  return rej('FAILED_PRECONDITION', 'referral ' .. ID .. ' is ' ..
    sname(r.st) .. ': ' .. what .. ' only while it is ' ..
    table.concat(names, ' or ') .. (how and ('; ' .. how) or ''))
end
local function need_enterprise(what)
  if gm.participant == r.ent then return nil end
  -- Not who it is: ids are sequential, so naming the enterprise here would
  -- tell any enterprise whose every referral is.
  return rej('PERMISSION_DENIED', 'only the enterprise that referred ' .. ID ..
    ' may ' .. what .. ' it')
end
local function need_holder(bank, what)
  if r.bank and r.bank ~= '' and bank == r.bank then return nil end
  local due = redis.call('HGET', P .. 'xd', bank)
  if due then
    local kind = redis.call('HGET', P .. 'xk', bank) or 'contact'
    return rej('FAILED_PRECONDITION', 'your bank ' .. bank .. ' missed ' ..
      'the ' .. kind .. ' deadline of ' .. ID .. ' (' .. stamp(tonumber(due)) ..
      ' Asia/Shanghai): the miss is recorded and ' ..
      'your bank no longer holds it, so it may not ' .. what)
  end
  return rej('PERMISSION_DENIED', 'only the bank the enterprise picked for ' ..
    ID .. ' may ' .. what .. '; your bank ' .. bank .. ' does not hold it')
end
-- The bank's fitting products as a list of {product, fee bp}.
local function fitting(bank)
  local t = {}
  for p, fee in string.gmatch(redis.call('HGET', P .. 'eb', bank) or '',
    '([^,/]+)/(%d+)') do t[#t + 1] = {p, fee} end
  return t
end

if op == 'claim' then
  local bank, prod = ARGV[2], ARGV[3]
  -- Who may, before the state: a bank that may not see the referral
  -- learns nothing of where it went.
  local fit = fitting(bank)
  if #fit == 0 then
    return rej('PERMISSION_DENIED', 'your bank ' .. bank .. ' has no product ' ..
      'that fits referral ' .. ID .. '; only banks with a fitting product ' ..
      '(as screened when it was submitted) may claim it')
  end
  if r.bank ~= bank then unread = bank end
  -- Past the claims: a bank that does not hold it (a claimant not picked,
  -- an eligible bank that never claimed) cannot read it, so it is not told
  -- its state either (funded, declined, withdrawn: another bank's
  -- business and the enterprise's), only that it cannot claim.
  if unread and not r.arch and r.st ~= ST.open and r.st ~= ST.claimed then
    return rej('FAILED_PRECONDITION', 'referral ' .. ID .. ' is no ' ..
      'longer open to claims (the enterprise picked a bank for it, or it ' ..
      'ended); your bank ' .. bank .. ', which does not hold it, cannot ' ..
      'read it. It comes back to the queues of the eligible banks only if ' ..
      'the bank picked misses a deadline')
  end
  local bad = need_state('a bank can claim it', ST.open, ST.claimed)
  if bad then return bad end
  -- Past the pick deadline, before it fired (it fires a little after its
  -- time): nobody can pick any more (pick refuses), so a claim would only
  -- let the bank read a referral that expires.
  if (tonumber(r.pdue) or math.huge) <= NOW then
    return rej('FAILED_PRECONDITION', 'the pick deadline of ' .. ID ..
      ' passed at ' .. stamp(tonumber(r.pdue)) .. ' Asia/Shanghai: it ' ..
      'expires, and no bank can claim or be picked for it any more')
  end
  if redis.call('SISMEMBER', P .. 'x', bank) == 1 then
    return rej('PERMISSION_DENIED', 'your bank ' .. bank .. ' missed the ' ..
      (redis.call('HGET', P .. 'xk', bank) or 'contact') .. ' deadline on ' ..
      ID .. ' and may not claim it again; the ' ..
      'other eligible banks may')
  end
  if redis.call('ZSCORE', P .. 'cl', bank) then
    return rej('ALREADY_EXISTS', 'your bank ' .. bank .. ' already claimed ' ..
      ID .. '; the enterprise picks one of its claimants')
  end
  local n = redis.call('ZCARD', P .. 'cl')
  local maxc = tonumber(r.maxc)
  if n >= maxc then
    return rej('FAILED_PRECONDITION', 'referral ' .. ID .. ' already has ' ..
      I(n) .. ' claims, the most allowed: the first ' .. I(maxc) ..
      ' banks to claim it have access; it comes back to the pool only if ' ..
      'the bank picked misses its contact deadline')
  end
  local pick
  for _, f in ipairs(fit) do
    if prod == '' or f[1] == prod then pick = f break end
  end
  if not pick then
    local names = {}
    for _, f in ipairs(fit) do names[#names + 1] = f[1] end
    return rej('INVALID_ARGUMENT', 'product ' .. prod .. ' does not fit ' ..
      ID .. '; your bank\'s products that fit: ' .. table.concat(names, ', '))
  end
  redis.call('ZADD', P .. 'cl', n + 1, bank)
  redis.call('HSET', P .. 'cp', bank, pick[1] .. '/' .. pick[2])
  return reply(move(r, ST.claimed, 'claim', {},
    {'bank', bank, 'prod', pick[1], 'fee', pick[2], 'n', I(n + 1)}))
end

if op == 'pick' then
  local bank = ARGV[2]
  local bad = need_enterprise('pick a bank for') or
    need_state('a bank can be picked', ST.claimed)
  if bad then return bad end
  -- A deadline fires a little after its time: it decides from then on.
  if (tonumber(r.pdue) or math.huge) <= NOW then
    return rej('FAILED_PRECONDITION', 'the pick deadline of ' .. ID ..
      ' has passed: it expires, and no bank can be picked any more')
  end
  local cp = redis.call('HGET', P .. 'cp', bank)
  if not cp then
    local cl = redis.call('ZRANGE', P .. 'cl', 0, -1)
    return rej('INVALID_ARGUMENT', 'bank ' .. bank .. ' has not claimed ' ..
      ID .. '; pick one of its claimants: ' .. table.concat(cl, ', '))
  end
  -- Picked, a bank nobody can act for could only miss its contact
  -- deadline, and the other claimants lose access at the pick.
  if ARGV[4] == 'unstaffed' then
    local others = {}
    for _, b in ipairs(redis.call('ZRANGE', P .. 'cl', 0, -1)) do
      if b ~= bank then others[#others + 1] = b end
    end
    return rej('FAILED_PRECONDITION', 'bank ' .. bank .. ' has no staff ' ..
      'who can act for it now, so it could not make contact within the ' ..
      'contact deadline; ' .. (#others > 0 and ('pick another claimant (' ..
      table.concat(others, ', ') .. '), or ') or '') .. 'pick ' .. bank ..
      ' once the centre has linked staff to it (before the pick deadline, ' ..
      stamp(tonumber(r.pdue)) .. ' Asia/Shanghai)')
  end
  local prod, fee = string.match(cp, '^(.*)/(%d+)$')
  gm.deadline_cancel('pick', ID)
  gm.deadline('contact', ID, tonumber(ARGV[3]))
  return reply(move(r, ST.picked, 'pick',
    {'bank', bank, 'prod', prod, 'fee', fee, 'pk', I(NOW), 'cdue', ARGV[3]},
    {'bank', bank, 'prod', prod, 'fee', fee, 'cdue', ARGV[3]}))
end

-- What becomes of the referral when `bank`'s miss is recorded, for
-- messages: the pool for the eligible banks that have not missed, or its
-- end when none is left.
local function after_miss(bank)
  local left = 0
  for _, b in ipairs(redis.call('HKEYS', P .. 'eb')) do
    if b ~= bank and redis.call('SISMEMBER', P .. 'x', b) == 0 then
      left = left + 1
    end
  end
  if left == 0 then return 'expires (no other eligible bank is left)' end
  return 'returns to the pool for the ' .. I(left) .. ' other eligible bank' ..
    (left > 1 and 's' or '')
end

-- The due time of the holding bank's `kind` deadline ('contact' or
-- 'decision') when it has passed in the state that deadline bounds (picked;
-- under review or approved: a question unanswered holds it back), else nil.
local function passed(kind)
  if kind == 'contact' then
    if r.st == ST.picked and (tonumber(r.cdue) or math.huge) <= NOW then
      return r.cdue
    end
  elseif (r.st == ST.under_review or r.st == ST.approved) and
      (tonumber(r.ddue) or math.huge) <= NOW then
    return r.ddue
  end
  return nil
end

-- Records the holding bank's miss of its `kind` deadline, due then: it
-- loses access and may not claim again, and the ledger gets a breach.
local function record_miss(kind, due)
  redis.call('SADD', P .. 'x', r.bank)
  redis.call('HSET', P .. 'xd', r.bank, due)
  if kind == 'decision' then redis.call('HSET', P .. 'xk', r.bank, kind) end
  -- A decision miss carries its due as 'ddue', not 'cdue': a settler that
  -- knows no decision deadline (a broker before 2026-12-05 during a
  -- rolling upgrade) would record it as a missed contact, and reads a due
  -- of 0 instead, which the ledger refuses (settle.c, migration 6).
  gm.emit('breach', 'id', ID, 'bank', r.bank, 'rnd', r.rnd, 'pk', r.pk,
    kind == 'decision' and 'ddue' or 'cdue', due, 'kind', kind, 't', I(NOW))
end

-- The bank picked, past its contact deadline before the deadline fired
-- (it fires a little after its time): too late for whatever it would do
-- now, contact or a decline alike, which would spare it the miss and end
-- the referral instead of returning it to the pool.
local function contact_late(bank)
  if not passed('contact') then return nil end
  return rej('FAILED_PRECONDITION', 'the contact deadline of ' .. ID ..
    ' passed at ' .. stamp(tonumber(r.cdue)) .. ' Asia/Shanghai: the ' ..
    'miss will be recorded against your bank and the referral ' ..
    after_miss(bank))
end

-- The bank holding it, under review or approved past its decision
-- deadline before the deadline fired: too late for anything but the
-- enterprise's withdrawal (a decline would spare it the miss, as above).
-- While the enterprise answers a question the deadline waits (dleft).
local function decision_late(bank)
  if not passed('decision') then return nil end
  return rej('FAILED_PRECONDITION', 'the decision deadline of ' .. ID ..
    ' passed at ' .. stamp(tonumber(r.ddue)) .. ' Asia/Shanghai (your ' ..
    'bank had until then to fund or decline it): the miss will be ' ..
    'recorded against your bank and the referral ' ..
    after_miss(bank))
end

if op == 'contact' then
  local bank = ARGV[2]
  local bad = need_holder(bank, 'record contact') or
    need_state('contact can be recorded', ST.picked) or
    contact_late(bank)
  if bad then return bad end
  gm.deadline_cancel('contact', ID)
  local set, extra = {'cx', I(NOW), 'cnote', ARGV[3]},
    {'bank', bank, 'detail', ARGV[3]}
  local ddue = tonumber(ARGV[4] or '')
  if ddue then
    gm.deadline('decision', ID, ddue)
    set[#set + 1], set[#set + 2] = 'ddue', I(ddue)
    extra[#extra + 1], extra[#extra + 2] = 'ddue', I(ddue)
  end
  return reply(move(r, ST.under_review, 'contact', set, extra))
end

if op == 'ask' then
  local bank = ARGV[2]
  local bad = need_holder(bank, 'ask the enterprise about it') or
    need_state('the bank can ask the enterprise', ST.under_review) or
    decision_late(bank)
  if bad then return bad end
  -- The decision deadline waits while the enterprise answers.
  local set = {'q', ARGV[3], 'ans', ''}
  if tonumber(r.ddue) then
    gm.deadline_cancel('decision', ID)
    set[#set + 1], set[#set + 2] = 'dleft', I(tonumber(r.ddue) - NOW)
    set[#set + 1], set[#set + 2] = 'ddue', ''
  end
  return reply(move(r, ST.info_requested, 'ask', set,
    {'bank', bank, 'detail', ARGV[3]}))
end

if op == 'answer' then
  local bad = need_enterprise('answer the bank about') or
    need_state('the enterprise can answer', ST.info_requested)
  if bad then return bad end
  local set, extra = {'ans', ARGV[2]}, {'bank', r.bank, 'detail', ARGV[2]}
  if tonumber(r.dleft) then
    local ddue = NOW + tonumber(r.dleft)
    gm.deadline('decision', ID, ddue)
    set[#set + 1], set[#set + 2] = 'ddue', I(ddue)
    set[#set + 1], set[#set + 2] = 'dleft', ''
    -- The ledger's decision_due_ms follows (settle.c).
    extra[#extra + 1], extra[#extra + 2] = 'ddue', I(ddue)
  end
  return reply(move(r, ST.under_review, 'answer', set, extra))
end

-- nil, or why the approval stored breaks the rules approve follows (an
-- approval made before they were checked): at most the amount asked, the
-- rate and the tenor within the ranges of the product claimed with
-- ("id=min-max;..." in ranges, in bp; in tenors, in months; a broker from
-- before the tenor check sends no tenors).
local function approval_breaks(ranges, tenors)
  if tonumber(r.aamt) > tonumber(r.amt) then
    return 'its amount ' .. money(tonumber(r.aamt), r.cur) .. ' is more ' ..
      'than the enterprise asked for, ' .. money(tonumber(r.amt), r.cur)
  end
  local rate = tonumber(r.arate)
  for id, lo, hi in string.gmatch(ranges or '', '([^;=]+)=(%d+)-(%d+);') do
    if id == r.prod and (rate < tonumber(lo) or rate > tonumber(hi)) then
      return 'its rate ' .. pct(rate) .. ' is outside ' .. pct(tonumber(lo)) ..
        '-' .. pct(tonumber(hi)) .. ', the range product ' .. id ..
        ' (claimed for ' .. ID .. ') advertises'
    end
  end
  local ten = tonumber(r.aten)
  for id, lo, hi in string.gmatch(tenors or '', '([^;=]+)=(%d+)-(%d+);') do
    if id == r.prod and (ten < tonumber(lo) or ten > tonumber(hi)) then
      return 'its tenor ' .. r.aten .. ' months is outside ' .. lo .. '-' ..
        hi .. ' months, the range product ' .. id .. ' (claimed for ' .. ID ..
        ') advertises'
    end
  end
  return nil
end

if op == 'approve' then
  local bank = ARGV[2]
  local bad = need_holder(bank, 'approve it') or
    need_state('the bank can approve it', ST.under_review, ST.approved) or
    decision_late(bank)
  if bad then return bad end
  -- An approval is not changed, unless it breaks the rules below (made
  -- before they were checked): fund refuses it and asks for this one.
  if r.st == ST.approved and not approval_breaks(ARGV[6], ARGV[7]) then
    return rej('FAILED_PRECONDITION', 'referral ' .. ID .. ' is approved ' ..
      '(' .. money(tonumber(r.aamt), r.cur) .. ' at ' ..
      pct(tonumber(r.arate)) .. ' for ' .. r.aten .. ' months): an ' ..
      'approval is not changed; fund it, or decline it (gm finance ' ..
      'decline ' .. ID .. ' REASON TEXT)')
  end
  local amt, rate = tonumber(ARGV[3]), tonumber(ARGV[4])
  bad = decimals_bad('the approved amount', amt, r.cur)
  if bad then return bad end
  -- A bank lends at most what was asked: more is a new need, which the
  -- enterprise refers.
  if amt > tonumber(r.amt) then
    return rej('INVALID_ARGUMENT', 'the approved amount ' .. money(amt, r.cur) ..
      ' is more than the enterprise asked for, ' .. money(tonumber(r.amt),
      r.cur) .. '; approve at most that (a larger loan is a new need the ' ..
      'enterprise refers)')
  end
  -- The rate stays within what the product claimed with advertises.
  for id, lo, hi in string.gmatch(ARGV[6] or '', '([^;=]+)=(%d+)-(%d+);') do
    if id == r.prod and (rate < tonumber(lo) or rate > tonumber(hi)) then
      return rej('INVALID_ARGUMENT', 'the rate ' .. pct(rate) .. ' is ' ..
        'outside ' .. pct(tonumber(lo)) .. '-' .. pct(tonumber(hi)) ..
        ', the range product ' .. id .. ' (claimed for ' .. ID .. ') ' ..
        'advertises; approve within it, or decline (policy) if your terms ' ..
        'are outside it')
    end
  end
  -- So does the tenor (ARGV[7]: "id=min-max;" in months).
  local ten = tonumber(ARGV[5])
  for id, lo, hi in string.gmatch(ARGV[7] or '', '([^;=]+)=(%d+)-(%d+);') do
    if id == r.prod and (ten < tonumber(lo) or ten > tonumber(hi)) then
      return rej('INVALID_ARGUMENT', 'the tenor ' .. ARGV[5] .. ' months ' ..
        'is outside ' .. lo .. '-' .. hi .. ' months, the range product ' ..
        id .. ' (claimed for ' .. ID .. ') advertises; approve within it, ' ..
        'or decline (policy) if your terms are outside it')
    end
  end
  return reply(move(r, ST.approved, 'approve',
    {'aamt', ARGV[3], 'arate', ARGV[4], 'aten', ARGV[5], 'at', I(NOW),
      'dt', I(NOW)},
    {'bank', bank, 'amt', ARGV[3], 'rate', ARGV[4], 'ten', ARGV[5]}))
end

if op == 'fund' then
  local bank, amt, day = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
  local bad = need_holder(bank, 'fund it') or
    need_state('the bank can fund it', ST.approved) or decision_late(bank)
  if bad then return bad end
  -- An approval made before approve checked its rules is funded only once
  -- the bank approves again within them.
  local why = approval_breaks(ARGV[6], ARGV[7])
  if why then
    return rej('FAILED_PRECONDITION', 'the approval of ' .. ID .. ' (' ..
      stamp(tonumber(r.at)) .. ' Asia/Shanghai) breaks the rules an ' ..
      'approval follows: ' .. why .. '; approve it again within them (gm ' ..
      'finance approve ' .. ID .. ' --amount AMOUNT --rate PCT --tenor ' ..
      'MONTHS), then fund, or decline it (policy)')
  end
  bad = decimals_bad('the funded amount', amt, r.cur)
  if bad then return bad end
  if amt > tonumber(r.aamt) then
    return rej('INVALID_ARGUMENT', 'the funded amount ' .. money(amt, r.cur) ..
      ' is more than the approved ' .. money(tonumber(r.aamt), r.cur) ..
      '; fund at most that: an approval is not changed, so to lend more ' ..
      'decline it (gm finance decline ' .. ID .. ' other TEXT) and the ' ..
      'enterprise refers the larger need again')
  end
  local aday = math.floor((tonumber(r.at) + TZ_MS) / DAY_MS)
  if day < aday then
    return rej('INVALID_ARGUMENT', 'the value date ' .. ARGV[4] ..
      ' is before the approval (' .. stamp(tonumber(r.at)):sub(1, 10) ..
      '); give the day the loan was paid out, on or after it')
  end
  gm.deadline_cancel('decision', ID)
  return reply(move(r, ST.funded, 'fund',
    {'famt', ARGV[3], 'fdate', ARGV[4], 'ft', I(NOW), 'xt', I(NOW)},
    {'bank', bank, 'prod', r.prod, 'fee', r.fee, 'amt', ARGV[3],
      'rate', r.arate, 'ten', r.aten, 'date', ARGV[4]}))
end

if op == 'decline' then
  local bank = ARGV[2]
  local bad = need_holder(bank, 'decline it') or
    need_state('the bank can decline it', ST.picked, ST.under_review,
      ST.info_requested, ST.approved) or contact_late(bank) or
    decision_late(bank)
  if bad then return bad end
  gm.deadline_cancel('contact', ID)
  gm.deadline_cancel('decision', ID)
  local set = {'drc', ARGV[3], 'dtx', ARGV[4], 'xt', I(NOW)}
  -- The first decision counts for the time to decision; a decline after
  -- an approval keeps it.
  if not r.dt or r.dt == '' then set[#set + 1], set[#set + 2] = 'dt', I(NOW) end
  return reply(move(r, ST.declined, 'decline', set,
    {'bank', bank, 'code', ARGV[3], 'detail', ARGV[4]}))
end

if op == 'withdraw' then
  local bad = need_enterprise('withdraw') or
    need_state('the enterprise can withdraw it', ST.open, ST.claimed,
      ST.picked, ST.under_review, ST.info_requested, ST.approved)
  if bad then return bad end
  -- The bank holding it let its contact or decision deadline pass (each
  -- fires a little after its time): the miss is recorded as the firing
  -- would have, or the cancels below would spare the bank it (its refused
  -- contact, fund or decline says it is recorded).
  for _, kind in ipairs({'contact', 'decision'}) do
    local due = passed(kind)
    if due then record_miss(kind, due) end
  end
  gm.deadline_cancel('pick', ID)
  gm.deadline_cancel('contact', ID)
  gm.deadline_cancel('decision', ID)
  return reply(move(r, ST.withdrawn, 'withdraw', {'wr', ARGV[2], 'xt', I(NOW)},
    {'bank', r.bank or '', 'detail', ARGV[2]}))
end

-- Ends a referral nobody may take any more.
local function expire(why)
  gm.deadline_cancel('pick', ID)
  gm.deadline_cancel('contact', ID)
  gm.deadline_cancel('decision', ID)
  return move(r, ST.expired, 'expire', {'er', why, 'xt', I(NOW)},
    {'detail', why})
end

if op == 'expire' then
  -- The pick deadline: nothing to do if it was picked, withdrawn, or
  -- returned to the pool with a later deadline meanwhile.
  if (r.st ~= ST.open and r.st ~= ST.claimed) or tonumber(r.pdue) > NOW then
    return reply({'none', I(r.st)})
  end
  local n = redis.call('ZCARD', P .. 'cl')
  return reply(expire(n > 0 and 'the enterprise picked none of the ' ..
    I(n) .. ' claimants in time' or 'no bank claimed it in time'))
end

if op == 'dstamp' then
  if (r.st == ST.under_review or r.st == ST.approved or
      r.st == ST.info_requested) and not r.arch and
      not tonumber(r.ddue) and not tonumber(r.dleft) then
    local left = tonumber(ARGV[2])
    if r.st == ST.info_requested then
      redis.call('HSET', P .. 'r', 'dleft', I(left))
    else
      redis.call('HSET', P .. 'r', 'ddue', I(NOW + left))
      gm.deadline('decision', ID, NOW + left)
    end
    -- The ledger learns it has one (finance_referrals.decision_due_ms),
    -- so the sweep does not find it again.
    gm.emit('ddue', 'id', ID, 'ddue', I(NOW + left), 't', I(NOW))
    return {'set'}
  end
  return {'had'}
end

if op == 'miss' then
  -- The contact deadline: the bank picked made no contact in time; the
  -- decision deadline: the bank that made contact neither funded nor
  -- declined in time (under review or approved: a question the
  -- enterprise has not answered holds it back).
  local kind = ARGV[3] == 'decision' and 'decision' or 'contact'
  local due = passed(kind)
  if not due then return reply({'none', I(r.st)}) end
  local missed = r.bank
  record_miss(kind, due)
  redis.call('DEL', P .. 'cl', P .. 'cp')
  local left = 0
  for _, b in ipairs(redis.call('HKEYS', P .. 'eb')) do
    if redis.call('SISMEMBER', P .. 'x', b) == 0 then left = left + 1 end
  end
  r.rnd = I(tonumber(r.rnd) + 1)
  -- The next bank starts afresh: the review of the one that missed, its
  -- question and approval included, stay in the ledger's transitions.
  redis.call('HSET', P .. 'r', 'rnd', r.rnd, 'bank', '', 'prod', '', 'fee', '',
    'pk', '', 'cdue', '', 'cx', '', 'cnote', '', 'ddue', '', 'dleft', '',
    'q', '', 'ans', '', 'aamt', '', 'arate', '', 'aten', '', 'at', '',
    'dt', '')
  if left == 0 then
    return reply(expire('bank ' .. missed .. ' missed its ' .. kind ..
      ' deadline and no other eligible bank is left'))
  end
  gm.deadline('pick', ID, tonumber(ARGV[2]))
  return reply(move(r, ST.open, 'return', {'pdue', ARGV[2]},
    {'bank', missed, 'detail', 'bank ' .. missed .. (kind == 'contact' and
      ' made no contact by the deadline' or ' neither funded nor declined ' ..
      'it by the decision deadline'), 'pdue', ARGV[2]}))
end

return rej('INVALID_ARGUMENT', 'unknown referral op ' .. tostring(op))
