-- procurement lib: prepended by procurement.c to every procurement script
-- (one source per registered script, so each call is one atomic step).
--
-- KEYS[1] is "gm:{procurement:<tag>}:k"; every other key is derived from
-- its prefix P, so all keys of a call share the tag's hash slot.  Tags and
-- keys (P = "gm:{procurement:<tag>}:"):
--   cat        P.cats       HASH code -> "name\tpolicy\tbp\tlabels\tmin\tupd"
--   crt:NN     P.c:<no>     HASH one certificate (16 shards by number)
--   cal        P.days       HASH day number -> 'h' holiday | 'w' worked |
--                           'n' the weekday rule (over calendar.csv's)
--   org:NN     P.p:<id>     HASH one party: uscc name size upd (16 shards)
--              P.u          HASH credit code -> the party that registered it
--                           (on the shard of the code)
--              P.rq         HASH credit code -> a reclaim of it (claimant,
--                           holder, status ...; catalogue.lua rqput)
--   t:<id>     P.t          HASH the tender (fields below)
--              P.dm         HASH joint buyer -> its items (base64 protobuf)
--              P.am         HASH version -> "time\nfields\nnote"
--              P.sec        HASH supplier -> bid security lodged (fen)
--              P.b          HASH supplier -> bid record (bid_pack)
--              P.bc         HASH supplier -> sealed bid (base64, until opened)
--              P.bz         ZSET suppliers with a live bid, by first seq
--              P.o          HASH supplier -> the opened bid's text
--              P.rg         HASH supplier -> "uscc|size": its register
--                           entry as the opening read it (every round)
--              P.e          HASH supplier -> "v|bid|evaluated|member"
--              P.rk         ZSET valid bids by evaluated price (lowest)
--              P.rt         ZSET valid bids by 10000 - total (scoring)
--              P.sc:<r>     HASH "<evaluator>|<supplier>" -> score (round r)
--              P.scn:<r>    HASH evaluator -> bids scored (round r)
--              P.aw:<n>     HASH award n
--              P.k:<id>     HASH contract
--              P.ch:<n>     HASH challenge n; P.cho SET open challenges
-- and the tender's deadlines (the host's P.dl): open|<id> at the bid
-- deadline (and at once for a re-evaluation), sign|<id> at the end of the
-- signing period of the award in force, archive|<id> ARCHIVE_MS after the
-- tender ended (complete, unsuccessful, cancelled: tender.lua `archive`
-- then removes every key above; ARCHIVE_MS is the line procurement.c puts
-- before this lib, from [market.procurement] archive_after_days).
--
-- Tender fields (P.t): id st lead buyers title cur budget dl items sec bond
-- am pw evs ver pub rev def closed round seed evat nb prog nvalid aw
-- chopen chpause chn reason upd bseq aw0 kid (prog: bids of the round
-- evaluated; aw0: the last award made before the round, award.lua; kid:
-- the id of the key every bid of the tender is sealed with, bid.lua; arch:
-- set when its archive began: the tender reads as gone from then on).
-- `def` is the tender's full definition as C built it (base64 of a packed
-- gm.procurement.Tender): scripts never read it, C does.  `buyers`, `items` and `evs` are ",a,b," lists.
--
-- Lua numbers are doubles: every amount stays at or below 10^15 fen (C
-- checks), so sums and comparisons here are exact.  Numbers go into
-- strings through I() ('%d'), never tostring().
local P = string.sub(KEYS[1], 1, -2)
local NOW = tonumber(gm.now)
local WHO = gm.participant
local floor = math.floor
local function I(x) return string.format('%d', x) end
local function rej(status, msg) return {err = status .. ' ' .. msg} end
local function yuan(f)
  local s = f < 0 and '-' or ''
  f = math.abs(f)
  return s .. string.format('%d.%02d', floor(f / 100), f % 100)
end
local function inlist(list, name)
  return string.find(list or ',', ',' .. name .. ',', 1, true) ~= nil
end
-- A packed record (C joins fields with tabs; no text field holds one):
-- exactly n fields, the last taking the rest.
local function fields(s, n)
  local out, i = {}, 1
  for k = 1, n - 1 do
    local j = string.find(s, '\t', i, true)
    if not j then error('a packed record has fewer than ' .. n .. ' fields') end
    out[k] = string.sub(s, i, j - 1)
    i = j + 1
  end
  out[n] = string.sub(s, i)
  return out
end
local function hgetall(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
-- "YYYY-MM-DD HH:MM" in Asia/Shanghai (UTC+8), for messages.
local function when(ms)
  local t = floor((ms + 28800000) / 60000)
  local z = floor(t / 1440) + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) -
    floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02d %02d:%02d', y, m, d,
    floor(t % 1440 / 60), t % 60)
end

-- The tender, or nil: the fields asked for (all when none are named).
-- A tender never published (a draft, or a draft cancelled) is its lead
-- agency's and its joint buyers' only: to anyone else it is nil, as if
-- there were none (tender.get answers "no tender" to them too), so no
-- refusal says that it exists, what state it is in or whose it is.  A
-- deadline's call (WHO '') sees it.
local T = P .. 't'
local function hidden(lead, buyers, pub)
  return WHO ~= '' and (tonumber(pub or '0') or 0) <= 0 and WHO ~= lead and
    not inlist(buyers, WHO)
end
local function tender(...)
  local names = {...}
  if #names == 0 then
    local t = hgetall(T)
    if hidden(t.lead, t.buyers, t.pub) then return nil end
    return (t.st and not t.arch) and t or nil
  end
  local n = #names
  names[n + 1] = 'lead'
  names[n + 2] = 'buyers'
  names[n + 3] = 'pub'
  names[n + 4] = 'arch'
  names[n + 5] = 'st'
  local v = redis.call('HMGET', T, unpack(names))
  if not v[#v] or v[#v - 1] then return nil end
  if hidden(v[n + 1], v[n + 2], v[n + 3]) then return nil end
  local t = {}
  for i, name in ipairs(names) do
    if i <= n or i > n + 4 then t[name] = v[i] end
  end
  return t
end
-- The tender reached a state it never leaves (complete, unsuccessful,
-- cancelled): its keys leave Redis ARCHIVE_MS later (tender.lua archive),
-- once the ledger holds that state.  Sealed bids never opened are of no
-- use to anyone from now on, and nobody may read them: they go at once.
local function ended(tid)
  redis.call('UNLINK', P .. 'bc')
  gm.deadline_cancel('open', tid)
  gm.deadline_cancel('sign', tid)
  gm.deadline('archive', tid, NOW + ARCHIVE_MS)
end
local function no_tender(id)
  return rej('NOT_FOUND', 'no tender ' .. id .. '; gm procurement tenders ' ..
    'lists the published ones')
end
-- A state change of the tender, for the ledger (procurement_tenders).
local function tender_emit(action, t, def)
  gm.emit('tender', 'id', t.id, 'action', action, 'st', t.st,
    'ver', t.ver or '0', 'lead', t.lead or '', 'reason', t.reason or '',
    'round', t.round or '0', 'aw', t.aw or '0', 'nb', t.nb or '0',
    'dl', t.dl or '0', 'pub', t.pub or '0', 'def', def or '', 't', I(NOW))
end

-- Bids: "state|version|hash|kid|time|seq" in P.b.
local function bid_get(who)
  local rec = redis.call('HGET', P .. 'b', who)
  if not rec then return nil end
  local st, ver, h, kid, t, seq = string.match(rec,
    '^(%a+)|(%d+)|(%x*)|(%x*)|(%d+)|(%d+)$')
  if not st then error('bid record of ' .. who .. ' is malformed: ' .. rec) end
  return {who = who, st = st, ver = tonumber(ver), h = h, kid = kid,
    t = tonumber(t), seq = tonumber(seq), rec = rec}
end
local function bid_pack(b)
  return b.st .. '|' .. I(b.ver) .. '|' .. b.h .. '|' .. b.kid .. '|' ..
    I(b.t) .. '|' .. I(b.seq)
end
