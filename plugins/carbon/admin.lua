-- admin: instrument rules and account movements.
--   ARGV create:    'create', kind, currency, tick, lot, ref, band bp,
--                   block band bp, block threshold, sessions, block sessions,
--                   holidays ",<day>,<day>,", max fills, name
--   ARGV halt:      'halt', reason      ARGV resume: 'resume'
--   ARGV deposit:   'deposit'|'withdraw', participant, asset c|a, amount,
--                   reference
--   ARGV configure: 'configure', stp mode (the caller's own account)
-- The symbol is the hash tag: KEYS[1] = gm:{carbon:<SYM>}:i.
begin()
local op = ARGV[1]
local SYM = string.match(P, '{carbon:(.*)}')

-- An instrument rule as an admin types it (gm carbon create): its name and
-- its value in yuan, %, t, HH:MM or dates, never the stored form.
local RULE = {kind = {'kind'}, cur = {'currency'}, tick = {'tick', 'yuan'},
  lot = {'lot', 't'}, ref = {'reference price', 'yuan'},
  band = {'price band', 'bp'}, bband = {'block price band', 'bp'},
  bmin = {'block threshold', 't'}, sess = {'sessions', 'hhmm'},
  bsess = {'block sessions', 'hhmm'}, hol = {'holidays', 'dates'},
  maxf = {'fills per step'}, name = {'name'}}
local function rule_text(field, v)
  local r = RULE[field]
  local u = r[2]
  if u == 'yuan' then return r[1], yuan(tonumber(v)) .. ' yuan' end
  if u == 't' then return r[1], v .. ' t' end
  if u == 'bp' then
    local bp = tonumber(v)
    return r[1], string.format('%d.%02d%%', floor(bp / 100), bp % 100)
  end
  if u == 'hhmm' then
    return r[1], (string.gsub(v, '%d+', function(m)
      m = tonumber(m)
      return string.format('%02d:%02d', floor(m / 60), m % 60)
    end))
  end
  if u == 'dates' then
    local d = {}
    for day in string.gmatch(v, '%d+') do d[#d + 1] = datestr(tonumber(day)) end
    return r[1], #d > 0 and table.concat(d, ',') or 'none'
  end
  return r[1], v
end

if op == 'create' then
  local f = {'kind', 'cur', 'tick', 'lot', 'ref', 'band', 'bband', 'bmin',
    'sess', 'bsess', 'hol', 'maxf', 'name'}
  local cur = redis.call('HMGET', KEYS[1], unpack(f))
  if cur[1] then
    -- Same rules again (a retry, or repairing the registry): fine.
    for i = 1, #f do
      if cur[i] ~= ARGV[i + 1] then
        local name, has = rule_text(f[i], cur[i])
        local _, asked = rule_text(f[i], ARGV[i + 1])
        return rej('ALREADY_EXISTS', 'instrument ' .. SYM .. ' exists with ' ..
          name .. ' ' .. has .. ', not ' .. asked .. '; create it again ' ..
          'with the same rules, or pick another symbol')
      end
    end
  else
    local args = {'sym', SYM, 'halt', '0', 'hreason', '', 'ct', I(NOW),
      'rv', inst_rv(), 'pad', INST_PAD,
      'seq', '0', 'tseq', '0', 'bseq', '0', 'cday', '0', 'close', '0'}
    for i = 1, #f do
      args[#args + 1] = f[i]
      args[#args + 1] = ARGV[i + 1]
    end
    redis.call('HSET', KEYS[1], unpack(args))
    -- The order and level hashes hold the field '-' = INST_PAD, never an
    -- order id or a price, for good (book removals and level_add delete
    -- only orders and levels), so Redis keeps them hash tables from the
    -- start (lib.lua, P.o and P.lq).
    redis.call('HSET', P .. 'lq:b', PAD_F, INST_PAD)
    redis.call('HSET', P .. 'lq:s', PAD_F, INST_PAD)
    redis.call('HSET', P .. 'o', PAD_F, INST_PAD)
    gm.emit('instrument', 'sym', SYM, 'ref', ARGV[6], 't', I(NOW))
  end
  -- Its first close (or, for one that exists, its next event: creating it
  -- again with the same rules repairs a missing deadline).
  local inst = inst_load()
  day_arm(inst)
  return {inst_rec(inst)}
end

local inst = inst_load()
if not inst then return inst_missing() end
if op == 'halt' or op == 'resume' then
  local h = op == 'halt' and '1' or '0'
  local reason = op == 'halt' and ARGV[2] or ''
  redis.call('HSET', KEYS[1], 'halt', h, 'hreason', reason)
  inst.halt, inst.hreason = h, reason
  return {inst_rec(inst)}
end
if op == 'configure' then
  local a = acct(gm.participant)
  a.stp = tonumber(ARGV[2])
  acct_flush()
  return {acct_rec(a)}
end
-- deposit / withdraw
local who, asset, amt, ref = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local a = acct(who)
local field = asset == 'c' and 'c' or 'al'
-- Amounts as people type them: cash in yuan, allowances in tonnes.
local function amount(x)
  if asset == 'c' then return yuan(x) .. ' yuan' end
  return I(x) .. ' t'
end
if op == 'withdraw' then
  if a[field] < amt then
    return rej('FAILED_PRECONDITION', who .. ' has ' .. amount(a[field]) ..
      ' available in ' .. SYM .. ', less than the ' .. amount(amt) ..
      ' to withdraw (frozen and today\'s purchases cannot be withdrawn)')
  end
  amt = -amt
elseif held(a, field) + amt > MAXCASH then
  return rej('RESOURCE_EXHAUSTED', 'the balance would pass the limit of ' ..
    amount(MAXCASH) .. ' that keeps amounts exact: ' .. who .. ' holds ' ..
    amount(held(a, field)) .. ' in ' .. SYM .. ', so at most ' ..
    amount(MAXCASH - held(a, field)) .. ' can be deposited')
end
a[field] = a[field] + amt
acct_flush()
gm.emit('move', 'who', who, 'asset', asset, 'amt', I(amt), 'why', op,
  'ref', ref, 't', I(NOW))
return {acct_rec(a)}
