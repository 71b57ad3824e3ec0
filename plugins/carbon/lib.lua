-- carbon lib: the lib of every carbon script (scripts.c; one function per
-- registered script, so each call is one atomic step).
--
-- KEYS[1] is the instrument hash "gm:{carbon:<SYM>}:i"; every other key is
-- derived from its prefix, so all keys of a call share the instrument's hash
-- tag (one Redis Cluster slot).  Keys (P = "gm:{carbon:<SYM>}:"):
--   P.i          HASH instrument rules, counters, day statistics
--   P.o          HASH order id -> packed record (ord_pack; one hash for all
--                resting orders: about 82 bytes per order instead of ~200
--                for a key per order), and the field '-' = INST_PAD, which
--                keeps it a hash table (admin.lua create, sweep.lua close)
--   P.bz:b/s     ZSET resting order ids by price (bids -price, asks +price);
--                equal prices sort by id = fixed-width sequence = time
--   P.lv:b/s     ZSET price levels (same scores), P.lq:b/s HASH level -> qty
--                and the field '-' = INST_PAD, which keeps it a hash table
--                (admin.lua create, sweep.lua close: as a listpack, up to 128
--                levels, every HINCRBY walked the levels before its own)
--   P.x          ZSET expiring orders ('<id>') and offers ('B<id>') by ms
--   P.a:<who>    HASH account: c cf al af lk ld stp
--   P.accts      SET participants with an account here
--   P.op:<who>   SET the participant's open orders, resting or in flight: their
--                sequence in decimal (op_m), or the 12-hex id (older sets)
--   P.co:<who>   HASH client order id -> first reply (cjson)
--   P.bk         HASH block offer id -> packed record
--   P.bo:<who>   SET open block offer ids to or from the participant
--                (block.list; an offer is in its offerer's and its
--                counterparty's set while it is open)
--   P.fl         HASH order id -> in-flight order (cjson): out of the book,
--                still matching over several steps of one call (place.lua);
--                cx = who cancelled it meanwhile (amend.lua); fk = a FOK
--                order's phase past max_fills: h holding, x executing, a
--                giving back (place.lua)
--   P.h:<id>     ZSET resting orders the FOK order <id> holds: out of the
--                book, same scores (so same priority), until it executes
--                or gives them back
--   P.hx         HASH held order id -> who asked to cancel it meanwhile
--   P.fx         SET FOK orders executing what they hold: no day closes
--                until they are done (sweep.lua)
--   P.hb:b/s     ZSET every held order of that side, whichever FOK order
--                holds it (same scores): an order does not rest across them;
--                P.i's field hbn counts both sets' members (place.lua,
--                hb_moved: absent until first counted)
--   P.fd         HASH order id -> final record of an order that was in
--                flight (cjson), for a retry that resumes after it ended
--   P.fdz        ZSET those ids by the ms they ended (pruned after a day)
--   P.e:<slot>   HASH order id -> final record of an order that ended in
--                that minute (slot = ms / ENDED_SLOT; ESLOT: under a
--                manual clock, real time's minutes), for order.get until
--                the ledger has it: each key expires as a whole
--                ENDED_KEEP + 2 x ENDED_SLOT ms after its first write
--                (ended_flush; the field '-' = INST_PAD keeps it a hash
--                table)
-- and the instrument's deadlines (the host's P.dl, set with gm.deadline):
--   day|<SYM>      the next end-of-day event: the earliest of the first
--                  close not done yet and the first expiry in P.x
--                  (day_arm); its callback expires and closes (day.c)
--   inflight|<id>  an order in flight: inflight_ms after its last step; its
--                  callback finishes the order if no retry of its call did
--   P.dv         HASH day -> "volume|turnover" of a day that traded and is
--                not closed yet, once a later day traded (closes in order)
--
-- Lua numbers are doubles: every amount stays below 2^53 because price <=
-- MAXP (1e8 fen) and quantity <= MAXQ (1e7 t), so price * quantity <= 1e15,
-- and cash balances are capped at MAXCASH.  Numbers go into strings only
-- through I() ('%d'), never tostring() (which prints 1e+15).
-- gmd makes this file's top level once per load of carbon's Redis library
-- (scripts.c, script_register_lib), not on every call: what belongs to one
-- call (P, NOW, TODAY, and the tables ACC, LV, EV and ENDED) is set by
-- begin(), at the end of this file, which every script calls first.  A
-- table this file makes and a call fills must be emptied there too, or the
-- next call sees it.
local P, NOW, TODAY
-- The slot of ended-order records (ended_flush, ended_get): NOW's, or the
-- one KEYS[2] names, P.e:<slot>: real time's under a manual clock (reply.c,
-- carbon__run), as their keys expire by Redis's clock.
local ESLOT
-- MAXP, MAXQ, MAXCASH, the enums (TIF, STATE, OFFER, STP) and the record
-- layouts (R_ORD, R_FILL, ...) come before this file, made by scripts.c
-- from price.h, carbon.proto and carbon.h: one declaration for C and Lua.
local DAYMS, TZMS = 86400000, 28800000 -- Asia/Shanghai: UTC+8, no DST
local floor = math.floor
-- I() keeps what it made across calls (prices, quantities, states, the
-- clock's ms recur from order to order; string.format is a C call through
-- vfprintf), emptied every 2048 numbers so it stays small.
local ISTR, ISTR_N = {}, 0
local function I(x)
  local s = ISTR[x]
  if s then return s end
  s = string.format('%d', x)
  if x ~= x then return s end -- NaN: not a table key
  if ISTR_N >= 2048 then ISTR, ISTR_N = {}, 0 end
  ISTR[x], ISTR_N = s, ISTR_N + 1
  return s
end
-- tonumber the same way: balances, order fields and scores come back from
-- Redis as the same strings again and again (strtod each time otherwise).
-- Every script sees this one (its text follows this file's).
local tonumber_raw, NUM, NUM_N = tonumber, {}, 0
local function tonumber(v, base)
  if base then return tonumber_raw(v, base) end
  local n = NUM[v]
  if n then return n end
  n = tonumber_raw(v)
  if n == nil or n ~= n then return n end
  if NUM_N >= 2048 then NUM, NUM_N = {}, 0 end
  NUM[v], NUM_N = n, NUM_N + 1
  return n
end
local function rej(status, msg) return {err = status .. ' ' .. msg} end
-- Reply records are made by R_<REC>_rec(tag, fields by name), generated
-- with the layouts (decl.c): every field must be given, or the record ends
-- at the first one missing (Redis stops an array at a nil).  Orders, fills
-- and levels, in every order's reply, by R_<REC>_str instead: the same
-- record as one string, fields separated by NUL (every field must be a
-- string); rec_tag gives such a record another tag.
local function yuan(f) return string.format('%d.%02d', floor(f / 100), f % 100) end

-- Time: trading day = days since the epoch in Asia/Shanghai.
local function lday(ms) return floor((ms + TZMS) / DAYMS) end
local function lmin(ms) return floor(((ms + TZMS) % DAYMS) / 60000) end
local function datestr(day) -- civil date from a day number (H. Hinnant)
  local z = day + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) -
    floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02d', y, m, d)
end
local function trading_day(inst, day)
  local w = (day + 4) % 7 -- 1970-01-01 was a Thursday; 0 = Sunday
  if w == 0 or w == 6 then return false end
  return not string.find(inst.hol, ',' .. I(day) .. ',', 1, true)
end
-- in_session's answers kept across calls (this file is made once per
-- library load), keyed by what decides them: the holiday list and day
-- (HOLDAY), the session spec (SESSW: its windows as numbers).  A few
-- strings each, so both stay small.
local HOLDAY, SESSW = {}, {}
-- spec: "570-690,780-900" minutes of the local day, sorted (checked in C).
local function in_session(inst, spec, ms)
  local day = lday(ms)
  local hd = HOLDAY[inst.hol]
  if not hd then hd = {} HOLDAY[inst.hol] = hd end
  local open = hd[day]
  if open == nil then open = trading_day(inst, day) hd[day] = open end
  if not open then return false end
  local w = SESSW[spec]
  if not w then
    w = {}
    for a, b in string.gmatch(spec, '(%d+)-(%d+)') do
      w[#w + 1], w[#w + 2] = tonumber(a), tonumber(b)
    end
    SESSW[spec] = w
  end
  local m = lmin(ms)
  for i = 1, #w, 2 do
    if m >= w[i] and m < w[i + 1] then return true end
  end
  return false
end
local function next_open(inst, spec, ms)
  local day, m = lday(ms), lmin(ms)
  for i = 0, 60 do
    if trading_day(inst, day + i) then
      for a in string.gmatch(spec, '(%d+)-%d+') do
        a = tonumber(a)
        if i > 0 or a > m then
          return string.format('%s %02d:%02d Asia/Shanghai', datestr(day + i),
            floor(a / 60), a % 60)
        end
      end
    end
  end
  return 'not within 60 days'
end
local function sess_text(spec)
  local t = {}
  for a, b in string.gmatch(spec, '(%d+)-(%d+)') do
    a, b = tonumber(a), tonumber(b)
    t[#t + 1] = string.format('%02d:%02d-%02d:%02d', floor(a / 60), a % 60,
      floor(b / 60), b % 60)
  end
  return table.concat(t, ',')
end
-- The ms at which `day`'s last session of spec ends (its close).
local function close_ms(spec, day)
  local last = 0
  for b in string.gmatch(spec, '%d+-(%d+)') do last = tonumber(b) end
  return day * DAYMS - TZMS + last * 60000
end

-- The close of the first trading day not closed yet (none within a year:
-- nil), from the day after the last close, or from the instrument's first
-- day.  Weekends and the holidays listed are the only days skipped.
local function next_close(inst)
  local from = inst.cday > 0 and inst.cday + 1 or lday(inst.ct)
  for d = from, from + 366 do
    if trading_day(inst, d) then return close_ms(inst.sess, d) end
  end
  return nil
end
-- Sets the instrument's end-of-day deadline to its next event: the next
-- close, or an expiry in P.x due before it.  Every expire and close step
-- runs it, so the deadline always says when the next one is due.
local function day_arm(inst)
  local due = next_close(inst)
  -- A close due while a FOK order executes waits for it (P.fx, sweep.lua):
  -- try again in a second, not at once (every expire step re-arms).
  if due and due <= NOW and redis.call('EXISTS', P .. 'fx') == 1 then
    due = NOW + 1000
  end
  local x = redis.call('ZRANGE', P .. 'x', '0', '0', 'WITHSCORES')
  if x[2] and (not due or tonumber(x[2]) < due) then due = tonumber(x[2]) end
  if due then gm.deadline('day', inst.sym, due)
  else gm.deadline_cancel('day', inst.sym) end
end
-- An expiry at `due` that may come before the instrument's deadline (a
-- GTD order expiring before today's close, a block offer before the close):
-- the deadline comes forward.  Everything else expires at or after a close
-- the deadline already waits for.
local function day_lower(inst, due)
  local cur = gm.deadline_get('day', inst.sym)
  if not cur or due < cur then gm.deadline('day', inst.sym, due) end
end

-- Instrument.  Its rules (ISTATIC) never change once it is created
-- (admin.lua refuses a create with other rules), so each script keeps them
-- parsed across calls (RULES: this file's top level is made once per
-- library load) under the instrument's key and 'rv', written once at its
-- creation and unique (Redis TIME), so an instrument deleted and created
-- again (FLUSHALL) has another rv.  One created before rv existed is read
-- whole until its next close gives it one (sweep.lua).
-- The fields that change are kept too (the snapshot, c.snap), checked on
-- each call against IVAL, which sit at the start of the hash (a listpack:
-- each field asked for is a walk from its start, and the day's statistics
-- sit at its end).  That holds because every write of the others comes
-- with a change of one of IVAL, whichever build writes it: the statistics
-- only with a trade (tseq, counted by every trade in inst.tseq and written
-- with them by inst_save_stats), close with cday (sweep.lua).  seq and
-- bseq are neither read from it nor kept (read.lua asks for seq itself).
local INUM = {'tick', 'lot', 'ref', 'band', 'bband', 'bmin', 'maxf', 'seq',
  'tseq', 'bseq', 'sday', 'last', 'open', 'high', 'low', 'vol', 'turn', 'ntr',
  'bvol', 'cday', 'close', 'ct'}
local ISTATIC = {'sym', 'kind', 'cur', 'tick', 'lot', 'band', 'bband', 'bmin',
  'sess', 'bsess', 'hol', 'maxf', 'name', 'ct'}
-- (hbn: place.lua's count of held orders, read here so that a resting
-- order checks the held sets only when they hold any.)
local IVAL = {'rv', 'halt', 'hreason', 'ref', 'cday', 'tseq', 'hbn'}
-- (inst_make names IREST's fields and inst_load ISTATS's again, each in
-- one table constructor: a field added here goes there too.)
local IREST = {'close', 'sday', 'last', 'open', 'high', 'low', 'vol', 'turn',
  'ntr', 'bvol'}
local RULES = {}
-- The day's statistics (inst_save_stats).
-- (tseq with them: a trade takes its id as inst.tseq + 1, and the call
-- writes it here once, not one HINCRBY per trade.)
local ISTATS = {'tseq', 'sday', 'last', 'open', 'high', 'low', 'vol', 'turn',
  'ntr', 'bvol'}
local function inst_whole()
  local flat = redis.call('HGETALL', KEYS[1])
  if #flat == 0 then return nil end
  local inst = {}
  for i = 1, #flat, 2 do inst[flat[i]] = flat[i + 1] end
  for _, f in ipairs(INUM) do inst[f] = tonumber(inst[f]) or 0 end
  inst.hol = inst.hol or ','
  if inst.rv then
    local st = {}
    for _, f in ipairs(ISTATIC) do st[f] = inst[f] end
    RULES[KEYS[1]] = {rv = inst.rv, mt = {__index = st}}
  end
  return inst
end
-- Keeps what the call now knows the hash holds as c.snap: the IVAL
-- fields as Redis answered them (raw: false for a missing one) and the
-- numbers of IREST.
local function inst_snap(c, inst)
  local n = {}
  for _, f in ipairs(IREST) do n[f] = inst[f] end
  c.snap = {halt = inst.halt, hreason = inst.hreason, ref = inst.ref,
    cday = inst.cday, tseq = inst.tseq, n = n}
end
-- The call's instrument, made in one table constructor (sized once: a
-- table grown field by field is rehashed at each power of two): the IVAL
-- fields d and the IREST numbers n, by name.
local function inst_make(c, d, n)
  return setmetatable({rv = d[1], halt = d[2], hreason = d[3],
    ref = tonumber(d[4]) or 0, cday = tonumber(d[5]) or 0,
    tseq = tonumber(d[6]) or 0, hbn = d[7], close = n.close, sday = n.sday,
    last = n.last, open = n.open, high = n.high, low = n.low, vol = n.vol,
    turn = n.turn, ntr = n.ntr, bvol = n.bvol}, c.mt)
end
local function inst_cached(c)
  local d = redis.call('HMGET', KEYS[1], unpack(IVAL))
  if d[1] ~= c.rv then return nil end
  local sn = c.snap
  if sn and sn.halt == d[2] and sn.hreason == d[3] and
      sn.ref == (tonumber(d[4]) or 0) and sn.cday == (tonumber(d[5]) or 0) and
      sn.tseq == (tonumber(d[6]) or 0) then
    return inst_make(c, d, sn.n)
  end
  local r, n = redis.call('HMGET', KEYS[1], unpack(IREST)), {}
  for i = 1, #IREST do n[IREST[i]] = tonumber(r[i]) or 0 end
  local inst = inst_make(c, d, n)
  inst_snap(c, inst)
  return inst
end
local function inst_load()
  local inst
  local c = RULES[KEYS[1]]
  if c then inst = inst_cached(c) end
  if not inst then inst = inst_whole() end
  if not inst then return nil end
  -- The statistics as stored: inst_save_stats writes only what differs.
  -- (ISTATS, in one constructor.)
  inst.was = {tseq = inst.tseq, sday = inst.sday, last = inst.last,
    open = inst.open, high = inst.high, low = inst.low, vol = inst.vol,
    turn = inst.turn, ntr = inst.ntr, bvol = inst.bvol}
  if inst.sday ~= TODAY then -- day statistics belong to an earlier day
    -- Kept for inst_save_stats: that day may not be closed yet.
    inst.psday, inst.pvol, inst.pturn = inst.sday, inst.vol, inst.turn
    inst.sday, inst.last, inst.open, inst.high, inst.low = TODAY, 0, 0, 0, 0
    inst.vol, inst.turn, inst.ntr, inst.bvol = 0, 0, 0, 0
  end
  return inst
end
-- A new rules version for HSET (admin.lua create, sweep.lua for an
-- instrument without one): Redis's clock in microseconds.
local function inst_rv()
  local t = redis.call('TIME')
  return t[1] .. '.' .. t[2]
end
-- Written with rv: a value longer than hash-max-listpack-value (64 bytes
-- by default) makes Redis keep the instrument's hash as a hash table for
-- good.  As a listpack (its ~40 fields are under the limits), every field
-- a call reads or writes is found by a walk from its start, and the day's
-- statistics, written by every trade, sit at its end.
local INST_PAD = string.rep('-', 80)
-- The field that holds INST_PAD in the hashes of orders, levels and ended
-- orders (admin.lua create, sweep.lua, ended_flush): never an order id or a
-- price.
local PAD_F = '-'
local function inst_rec(inst)
  return R_INST_rec('I', {sym = inst.sym, kind = inst.kind, cur = inst.cur,
    tick = I(inst.tick), lot = I(inst.lot), ref = I(inst.ref),
    band = I(inst.band), bband = I(inst.bband), bmin = I(inst.bmin),
    sess = inst.sess, bsess = inst.bsess, halt = inst.halt, hol = inst.hol,
    maxf = I(inst.maxf), name = inst.name or '',
    hreason = inst.hreason or '', ct = I(inst.ct)})
end
local function inst_missing()
  return rej('NOT_FOUND', 'no instrument ' .. string.match(P, '{carbon:(.*)}') ..
    '; see instrument.list (gm carbon instruments) for the symbols')
end
-- Today's statistics replace an earlier day's in the instrument hash.  If
-- that day traded and was not closed yet (no broker's timer ran over its
-- close), its volume and turnover move to P.dv for its close (sweep.lua),
-- which deletes them: P.dv holds only days that traded and wait for their
-- close.
local function inst_save_stats(inst)
  if inst.psday and inst.psday > inst.cday and inst.pvol > 0 then
    redis.call('HSET', P .. 'dv', I(inst.psday),
      I(inst.pvol) .. '|' .. I(inst.pturn))
  end
  inst.psday = nil
  -- Only the fields that changed: each field of the instrument's hash
  -- (a listpack of some 40) is found by a walk of it.
  local args, was = {'HSET', KEYS[1]}, inst.was
  for _, f in ipairs(ISTATS) do
    if inst[f] ~= was[f] then
      args[#args + 1], args[#args + 2], was[f] = f, I(inst[f]), inst[f]
    end
  end
  if #args > 2 then redis.call(unpack(args)) end
  -- This call's trades moved tseq (inst.tseq, written above): what the
  -- hash holds now is what inst says.
  local c = RULES[KEYS[1]]
  if c and c.rv == inst.rv then inst_snap(c, inst) end
end
-- Band [lo, hi] around the reference price, on the tick grid.
local function band(inst, bp)
  local lo = floor((inst.ref * (10000 - bp) + 9999) / 10000)
  local hi = floor(inst.ref * (10000 + bp) / 10000)
  lo = floor((lo + inst.tick - 1) / inst.tick) * inst.tick
  hi = floor(hi / inst.tick) * inst.tick
  if lo < inst.tick then lo = inst.tick end
  if hi > MAXP then hi = MAXP end
  return lo, hi
end
local function band_text(inst, bp, lo, hi)
  return string.format('%s-%s yuan (reference %s +/-%d.%02d%%)', yuan(lo),
    yuan(hi), yuan(inst.ref), floor(bp / 100), bp % 100)
end

-- Accounts: loaded once per call into a cache, written back by acct_flush.
local ACC = {}
local function acct(who)
  local a = ACC[who]
  if a then return a end
  local k = P .. 'a:' .. who
  local v = redis.call('HMGET', k, 'c', 'cf', 'al', 'af', 'lk', 'ld', 'stp')
  a = {k = k, who = who, new = not v[1], c = tonumber(v[1]) or 0,
    cf = tonumber(v[2]) or 0, al = tonumber(v[3]) or 0,
    af = tonumber(v[4]) or 0, lk = tonumber(v[5]) or 0,
    ld = tonumber(v[6]) or 0, stp = tonumber(v[7]) or 0}
  a.was = {a.c, a.cf, a.al, a.af, a.lk, a.ld, a.stp}
  -- Allowances bought on an earlier day became sellable at its end.
  if a.lk > 0 and a.ld < TODAY then a.al, a.lk = a.al + a.lk, 0 end
  ACC[who] = a
  return a
end
-- Everything an account holds, frozen and locked included: the cap applies
-- to this, so no balance can pass MAXCASH however funds move between fields.
local function held(a, field)
  if field == 'c' then return a.c + a.cf end
  return a.al + a.af + a.lk
end
-- Writes back what changed (a new account: every field), as it was read
-- (a.was), so a trade writes the two or four balances it moved.
local AFIELDS = {'c', 'cf', 'al', 'af', 'lk', 'ld', 'stp'}
local function acct_flush()
  for who, a in pairs(ACC) do
    local args, was = {'HSET', a.k}, a.was
    for i, f in ipairs(AFIELDS) do
      if a.new or a[f] ~= was[i] then
        args[#args + 1], args[#args + 2], was[i] = f, I(a[f]), a[f]
      end
    end
    if #args > 2 then redis.call(unpack(args)) end
    if a.new then redis.call('SADD', P .. 'accts', who) a.new = false end
  end
end
local function acct_rec(a)
  return R_ACCT_rec('A', {who = a.who, c = I(a.c), cf = I(a.cf),
    al = I(a.al), af = I(a.af), lk = I(a.lk), stp = I(a.stp)})
end

-- Orders: "who|side|price|remaining|filled|tif|expire|created"
-- A resting order's record in P.o: the previous layout was text,
-- "who|side|px|q|f|tif|exp|t"; now it is packed, 28 bytes for a name of 9
-- characters (a 32-byte allocation, against 48 for the text;
-- plugins/carbon/bench/layouts): a first byte 0x80 + (sell 1) + tif * 2 +
-- (exp given 16), then px, q, f (4 bytes each: MAXP and MAXQ are below
-- 2^32), t (6 bytes of ms), exp (6, only when given), and the owner's
-- name.  A text record starts with the name, never with a byte >= 0x80.
local ORD_HEAD, ORD_EXP = '>BI4I4I4I6', '>I6'
local function ord_get(id)
  local rec = redis.call('HGET', P .. 'o', id)
  if not rec then return nil end
  local h = string.byte(rec, 1)
  if h >= 0x80 and h < 0xa0 and #rec >= 19 + (h % 32 >= 16 and 6 or 0) then
    local _, px, q, f, t, pos = struct.unpack(ORD_HEAD, rec)
    local exp = 0
    if h % 32 >= 16 then exp, pos = struct.unpack(ORD_EXP, rec, pos) end
    return {id = id, who = string.sub(rec, pos), side = h % 2 == 1 and 's' or 'b',
      px = px, q = q, f = f, tif = floor(h / 2) % 8, exp = exp, t = t,
      typ = 'L'}
  end
  local who, s, px, q, f, tif, exp, t = string.match(rec,
    '^(.*)|(%a)|(%d+)|(%d+)|(%d+)|(%d)|(%d+)|(%d+)$')
  if not who then
    -- Only a bug writes such a record: stop before this call writes more.
    error('order record ' .. id .. ' is malformed: ' .. rec)
  end
  return {id = id, who = who, side = s, px = tonumber(px), q = tonumber(q),
    f = tonumber(f), tif = tonumber(tif), exp = tonumber(exp),
    t = tonumber(t), typ = 'L'}
end
local function ord_pack(o)
  local h = 0x80 + (o.side == 's' and 1 or 0) + o.tif * 2
  if o.exp > 0 then
    return struct.pack(ORD_HEAD .. 'I6', h + 16, o.px, o.q, o.f, o.t, o.exp) ..
      o.who
  end
  return struct.pack(ORD_HEAD, h, o.px, o.q, o.f, o.t) .. o.who
end
-- A resting order's state: STATE.PARTIAL once anything filled.
local function ord_state(o, final)
  if not final then return o.f > 0 and STATE.PARTIAL or STATE.OPEN end
  return final
end
local function rec_tag(rec, tag) return tag .. string.sub(rec, 2) end
-- tag: 'O' unless given.
-- The packed makers read their fields from one table per layout, kept
-- across calls and refilled whole for each record (no table made and
-- collected per record): a field left out here would be nil at its first
-- use, and the concatenation would stop the call.
local ORDV, FILLV = {}, {}
local function ord_rec(o, st, why, tag)
  local v = ORDV
  v.id, v.who, v.side, v.typ = o.id, o.who, o.side, o.typ
  v.tif, v.px, v.tot, v.left = I(o.tif), I(o.px), I(o.tot or o.q + o.f), I(o.q)
  v.filled, v.st, v.why, v.exp = I(o.f), I(st), why or '', I(o.exp)
  v.t, v.coid = I(o.t), o.coid or ''
  return R_ORD_str(tag or 'O', v)
end
local function fill_rec(tid, px, q, amt, maker)
  local v = FILLV
  v.tid, v.px, v.q, v.amt, v.maker, v.t = tid, I(px), I(q), I(amt), maker,
    I(NOW)
  return R_FILL_str('F', v)
end
-- Outbox records of orders and trades: packed (EV_ORDER and EV_TRADE, made
-- with the layouts in carbon.h), collected in EV in the order they happen
-- and appended by ev_flush as one entry per call (kind 'order', 'r' EV_CALL,
-- then a field 'order' or 'trade' per record: carbon.h): one XADD per call,
-- not one per record.  Every script that emits calls ev_flush before it returns.
local EV = {}
local function ord_emit(o, st, why)
  EV[#EV + 1] = 'order'
  EV[#EV + 1] = EV_ORDER(o.id, o.who, o.side, I(o.px), I(o.tot or o.q + o.f),
    I(o.q), I(o.f), I(st), I(o.tif), I(NOW), why or '')
end
local function trade_emit(tid, buy, sell, bo, so, px, q, amt, maker, blk)
  EV[#EV + 1] = 'trade'
  EV[#EV + 1] = EV_TRADE(tid, buy, sell, bo, so, I(px), I(q), I(amt), maker,
    blk, I(TODAY), I(NOW))
end
-- At most 100 records an entry: a mass cancel may end up to 100,000
-- orders, and unpack is bounded by Lua's C stack (8000 values).
-- A lone record (an order that rests without trading) keeps the entry of
-- its own kind: a call's entry for it measured 7 k instructions more per
-- plain order (callgrind; the Lua side, not the XADD).
local function ev_flush()
  for i = 1, #EV, 200 do
    if i + 1 == #EV then
      gm.emit(EV[i], 'r', EV[i + 1])
    else
      gm.emit('order', 'r', EV_CALL, unpack(EV, i, math.min(i + 199, #EV)))
    end
  end
  for i = #EV, 1, -1 do EV[i] = nil end
end

-- Book maintenance; LV collects the levels touched for the feed, each with
-- the quantity its last HINCRBY answered (no second read at the end).
local LV = {}
local function level_add(side, px, dq)
  local p = I(px)
  local q = redis.call('HINCRBY', P .. 'lq:' .. side, p, I(dq))
  if q <= 0 then
    redis.call('HDEL', P .. 'lq:' .. side, p)
    redis.call('ZREM', P .. 'lv:' .. side, p)
    q = 0
  elseif q == dq then
    redis.call('ZADD', P .. 'lv:' .. side, side == 'b' and '-' .. p or p, p)
  end
  LV[side .. p] = {side, p, q}
end
local LEVELV = {} -- as ORDV (ord_rec)
local function levels_out(out)
  local v = LEVELV
  for _, l in pairs(LV) do
    v.side, v.px, v.q = l[1], l[2], I(l[3])
    out[#out + 1] = R_LEVEL_str('L', v)
  end
end
-- The owner's open-order set (P.op:<who>) holds each order as its sequence
-- in decimal: Redis keeps a set of at most set-max-intset-entries (512)
-- integers as an intset, about 12 bytes an order against about 56 for a
-- set of 12-hex strings (plugins/carbon/bench/layouts).  Sets written
-- before hold the 12-hex ids themselves, so a member of 12 characters is
-- an id; from sequence 10^11 on (12 decimal digits) the id is kept as is.
local function op_m(id)
  local n = tonumber(id, 16)
  if n >= 1e11 then return id end
  return I(n)
end
local function op_id(m)
  if #m == 12 then return m end
  return string.format('%012x', m)
end
-- Removes id from the owner's set in either form.
local function op_rem(who, id)
  local m = op_m(id)
  if m == id then return redis.call('SREM', P .. 'op:' .. who, id) end
  return redis.call('SREM', P .. 'op:' .. who, m, id)
end
-- P.o holds the field '-' (never an order id) = INST_PAD for good (admin.lua
-- create; sweep.lua at each close for an instrument made before), so Redis
-- keeps it a hash table (a value longer than hash-max-listpack-value), as
-- the instrument's hash, and book_add sends no padding: as a listpack (up to
-- 128 orders, each record under the limit) every HGET, HSET and HDEL of an
-- order walked the orders before it: 3.4% of FCALL's instructions in the
-- carbon bench (callgrind).  A book of more than 128 orders was a hash table
-- already; a smaller one takes some 50 bytes more per order.
local function book_add(o)
  redis.call('ZADD', P .. 'bz:' .. o.side, (o.side == 'b' and '-' or '') ..
    I(o.px), o.id)
  redis.call('HSET', P .. 'o', o.id, ord_pack(o))
  redis.call('SADD', P .. 'op:' .. o.who, op_m(o.id))
  if o.exp > 0 then redis.call('ZADD', P .. 'x', I(o.exp), o.id) end
  level_add(o.side, o.px, o.q)
end
local function book_remove(o)
  redis.call('ZREM', P .. 'bz:' .. o.side, o.id)
  redis.call('HDEL', P .. 'o', o.id)
  op_rem(o.who, o.id)
  if o.exp > 0 then redis.call('ZREM', P .. 'x', o.id) end
end
-- Releases what an order still holds: buys hold q * price fen, sells q t.
local function release(o)
  local a = acct(o.who)
  if o.side == 'b' then
    a.cf, a.c = a.cf - o.q * o.px, a.c + o.q * o.px
  else
    a.af, a.al = a.af - o.q, a.al + o.q
  end
end
-- Ended orders: order.get must show an order's final state at once,
-- whatever the settler's lag, and the ledger has it only once settled.  So
-- the script that ends an order keeps its final record in Redis for
-- ENDED_KEEP ms at least: in the hash of the minute it ended, P.e:<slot>,
-- which expires as a whole (one HSET per call that ends orders, and a
-- PEXPIRE by the call that makes the key; no index and no walk to
-- prune).  Record:
-- "who|side|type|tif|price|quantity|filled|state|expire|created|reason"
-- (the reason last: the only field that may hold '|'; nothing remains).
local ENDED = {}
local function ord_ended(o, st, why)
  ENDED[#ENDED + 1] = o.id
  ENDED[#ENDED + 1] = o.who .. '|' .. o.side .. '|' .. o.typ .. '|' ..
    I(o.tif) .. '|' .. I(o.px) .. '|' .. I(o.tot or o.q + o.f) .. '|' ..
    I(o.f) .. '|' .. I(st) .. '|' .. I(o.exp) .. '|' .. I(o.t) .. '|' ..
    (why or '')
end
-- Expiry is relative (PEXPIRE): Redis counts it on its own clock, which a
-- test's manual clock does not move (so under a manual clock the slot is
-- real time's, ESLOT: a key written for longer than a slot after it was
-- made would take its newest records with it).  It is
-- set once, by the call that
-- makes the key (its HSET adds the field '-' besides the ids; into an
-- existing key it adds the ids alone, an order ending once), for
-- ENDED_KEEP + 2 slots: a slot is written during its minute by the brokers'
-- clocks, so at most a slot plus how far apart they are after the key was
-- made, and every record keeps ENDED_KEEP while they are at most a slot
-- apart.  (A PEXPIRE on every write was 0.43 commands per plain order.)
-- A key an older broker made has the expiry it set, 11 minutes after its
-- last write.
-- HSET takes at most 1000 orders at a time: unpack is bounded by Lua's C
-- stack (8000 values) and a mass cancel may end up to 100,000 orders.
-- Each HSET also writes the field '-' (never an order id) with INST_PAD,
-- longer than hash-max-listpack-value: Redis makes the hash a hash table
-- from its first write, as it does the instrument's.  As a listpack (a
-- record is about 50 bytes, under the limit, so until 128 orders ended in
-- that minute) each HSET walked every record and grew the listpack by a
-- realloc: 0.6% of FCALL's instructions in the carbon bench (callgrind).
local ENDED_TTL = I(ENDED_KEEP + 2 * ENDED_SLOT)
local function ended_flush()
  if #ENDED == 0 then return end
  local k = P .. 'e:' .. I(ESLOT)
  local made = false
  for i = 1, #ENDED, 2000 do
    local j = math.min(i + 1999, #ENDED)
    -- More than the ids new: the key was made now.  Fewer: an id was
    -- there already (only a bug ends an order twice); expire it anyway.
    if redis.call('HSET', k, PAD_F, INST_PAD, unpack(ENDED, i, j)) ~=
        (j - i + 1) / 2 then
      made = true
    end
  end
  if made then redis.call('PEXPIRE', k, ENDED_TTL) end
end
-- The final record of order id if it ended within ENDED_KEEP ms: the
-- order (as ord_get's), its state and reason; nil otherwise.
local function ended_get(id)
  local slot = ESLOT
  for s = slot, slot - floor(ENDED_KEEP / ENDED_SLOT), -1 do
    local rec = redis.call('HGET', P .. 'e:' .. I(s), id)
    if rec then
      local who, sd, typ, tif, px, tot, f, st, exp, t, why = string.match(rec,
        '^([^|]*)|(%a)|(%a)|(%d)|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|(.*)$')
      if not who then
        error('ended order record ' .. id .. ' is malformed: ' .. rec)
      end
      return {id = id, who = who, side = sd, typ = typ, tif = tonumber(tif),
        px = tonumber(px), tot = tonumber(tot), q = 0, f = tonumber(f),
        exp = tonumber(exp), t = tonumber(t)}, tonumber(st), why
    end
  end
  return nil
end

-- An order in flight (P.fl, place.lua): the order, its record's fields.
local function fl_get(id)
  local raw = redis.call('HGET', P .. 'fl', id)
  if not raw then return nil end
  local r = cjson.decode(raw)
  return {id = id, who = r.who, side = r.side, typ = r.typ,
    tif = tonumber(r.tif), px = tonumber(r.px), q = tonumber(r.q),
    f = tonumber(r.f), exp = tonumber(r.exp), t = tonumber(r.t),
    coid = r.coid}, r
end

-- The reason an order shows while a cancel of it waits (CANCEL_PENDING):
-- for an order in flight (P.fl cx) or one a FOK order holds (P.hx).
local function pending_why(cx, held)
  if held then
    return 'cancel pending: requested by ' .. cx .. '; a FOK order that ' ..
      'is matching holds it and fills it, or lets it go and it is cancelled'
  end
  return 'cancel pending: requested by ' .. cx .. '; the order is still ' ..
    'matching and its next step cancels the rest'
end

-- Takes a resting order off the book for good (cancel, expiry, STP).
-- Returns false and changes nothing when the order is not in the book: a
-- FOK order matching over several steps holds it (P.h:<id>, place.lua) and
-- only that order ends it or gives it back.  `held`: that FOK order ends
-- it (its quantity left the levels when it was taken).
local function ord_end(o, st, why, out, held)
  if not held then
    if redis.call('ZREM', P .. 'bz:' .. o.side, o.id) == 0 then return false end
    level_add(o.side, o.px, -o.q)
  end
  redis.call('HDEL', P .. 'o', o.id)
  op_rem(o.who, o.id)
  if o.exp > 0 then redis.call('ZREM', P .. 'x', o.id) end
  release(o)
  o.tot, o.q = o.q + o.f, 0 -- nothing stays open
  ord_emit(o, st, why)
  ord_ended(o, st, why)
  out[#out + 1] = ord_rec(o, st, why)
  return true
end

-- Block offers: "offerer|counterparty|side|price|qty|created" in P.bk.
local function offer_get(id)
  local rec = redis.call('HGET', P .. 'bk', id)
  if not rec then return nil end
  local of, cp, s, px, q, t = string.match(rec,
    '^(.*)|(.*)|(%a)|(%d+)|(%d+)|(%d+)$')
  if not of then error('block offer record ' .. id .. ' is malformed: ' .. rec) end
  return {id = id, of = of, cp = cp, side = s, px = tonumber(px),
    q = tonumber(q), t = tonumber(t)}
end
-- st: an OFFER state.
local function offer_rec(b, st, tid)
  return R_OFFER_rec('B', {id = b.id, of = b.of, cp = b.cp, side = b.side,
    px = I(b.px), q = I(b.q), st = I(st), tid = tid or '', t = I(b.t)})
end
local function offer_emit(b, st, tid)
  gm.emit('offer', 'id', b.id, 'offerer', b.of, 'cp', b.cp, 'side', b.side,
    'px', I(b.px), 'qty', I(b.q), 'st', I(st), 'trade', tid or '', 't', I(NOW))
end
-- An offer ends (accepted, rejected, withdrawn, expired): out of the book
-- of offers, the expiry set and both parties' lists.
local function offer_remove(b)
  redis.call('HDEL', P .. 'bk', b.id)
  redis.call('ZREM', P .. 'x', b.id)
  redis.call('SREM', P .. 'bo:' .. b.of, b.id)
  redis.call('SREM', P .. 'bo:' .. b.cp, b.id)
end

-- Walks (order.list, mass cancel, block.list, reconcile): up to n members
-- of set `key` with bounded work, for a walk over several runs (SMEMBERS
-- would cost the whole set, however large).  `pos` is where
-- the walk stands: '0' at its start, an SSCAN cursor (kept a string: it is
-- 64-bit), or '-' once the scan is over.  `carry` are members an earlier
-- SSCAN reply gave beyond that run's n (COUNT is only a hint); they come
-- first, so a run never takes more than n.  At most 16 SSCAN calls of COUNT
-- <= n, each visiting at most 10 x COUNT buckets.  With `hash`, the walk
-- is over a hash's fields (HSCAN).  Returns the members (no duplicates
-- within the run), the next position and the new carry.
local function page(key, pos, carry, n, hash, map)
  local got, seen, left = {}, {}, {}
  local function take(m)
    if map then m = map(m) end
    if seen[m] then return end
    seen[m] = true
    if #got < n then got[#got + 1] = m else left[#left + 1] = m end
  end
  for _, m in ipairs(carry) do take(m) end
  for _ = 1, 16 do
    if #got >= n or pos == '-' then break end
    local r = redis.call(hash and 'HSCAN' or 'SSCAN', key, pos, 'COUNT',
      n - #got)
    -- HSCAN answers field, value, field, value: the fields are the members.
    for i = 1, #r[2], hash and 2 or 1 do take(r[2][i]) end
    pos = r[1] == '0' and '-' or r[1]
  end
  return got, pos, left
end

-- Empties the list t, keeping its array part for the next call (no table
-- made, grown and collected per call).
local function clear(t)
  for i = #t, 1, -1 do t[i] = nil end
end
-- What belongs to one call, set first thing by every script (see the top).
-- EV and ENDED are lists, emptied (a call that failed may have left
-- records in them); ACC and LV are keyed, made anew.
local function begin()
  P = string.sub(KEYS[1], 1, -2)
  NOW = tonumber(gm.now)
  TODAY = lday(NOW)
  ESLOT = KEYS[2] and tonumber(string.sub(KEYS[2], #P + 3)) or
    floor(NOW / ENDED_SLOT)
  ACC, LV = {}, {}
  clear(EV)
  clear(ENDED)
end
