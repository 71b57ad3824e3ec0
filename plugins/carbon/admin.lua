-- admin: instrument rules and account movements.
--   ARGV create:    'create', kind, currency, tick, lot, ref, band bp,
--                   block band bp, block threshold, sessions, block sessions,
--                   holidays ",<day>,<day>,", max fills, name
--   ARGV halt:      'halt', reason      ARGV resume: 'resume'
--   ARGV deposit:   'deposit'|'withdraw', participant, asset c|a, amount,
--                   reference
--   ARGV configure: 'configure', stp mode (the caller's own account)
-- The symbol is the hash tag: KEYS[1] = gm:{carbon:<SYM>}:i.
local op = ARGV[1]
local SYM = string.match(P, '{carbon:(.*)}')
if op == 'create' then
  local f = {'kind', 'cur', 'tick', 'lot', 'ref', 'band', 'bband', 'bmin',
    'sess', 'bsess', 'hol', 'maxf', 'name'}
  local cur = redis.call('HMGET', KEYS[1], unpack(f))
  if cur[1] then
    -- Same rules again (a retry, or repairing the registry): fine.
    for i = 1, #f do
      if cur[i] ~= ARGV[i + 1] then
        return rej('ALREADY_EXISTS', 'instrument ' .. SYM ..
          ' exists with a different ' .. f[i] .. ' (' .. cur[i] ..
          '); pick another symbol')
      end
    end
  else
    local args = {'sym', SYM, 'halt', '0', 'hreason', '', 'ct', I(NOW),
      'seq', '0', 'tseq', '0', 'bseq', '0', 'cday', '0', 'close', '0'}
    for i = 1, #f do
      args[#args + 1] = f[i]
      args[#args + 1] = ARGV[i + 1]
    end
    redis.call('HSET', KEYS[1], unpack(args))
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
local unit = asset == 'c' and ' fen' or ' t'
if op == 'withdraw' then
  if a[field] < amt then
    return rej('FAILED_PRECONDITION', who .. ' has ' .. I(a[field]) .. unit ..
      ' available in ' .. SYM .. ', less than the ' .. I(amt) .. unit ..
      ' to withdraw (frozen and today\'s purchases cannot be withdrawn)')
  end
  amt = -amt
elseif held(a, field) + amt > MAXCASH then
  return rej('RESOURCE_EXHAUSTED', 'the balance would pass the limit of ' ..
    I(MAXCASH) .. unit .. ' that keeps amounts exact; split the account')
end
a[field] = a[field] + amt
acct_flush()
gm.emit('move', 'who', who, 'asset', asset, 'amt', I(amt), 'why', op,
  'ref', ref, 't', I(NOW))
return {acct_rec(a)}
