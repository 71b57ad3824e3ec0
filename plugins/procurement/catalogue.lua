-- catalogue: categories (tag cat), certificates (tags crt:00..15, by the
-- shard of their number), the working-day calendar (tag cal) and the party
-- register (tags org:00..15).  C has checked every field (rules.c) before
-- the first call; these steps only write, so a batch is all or nothing.
-- Records of a batch come one per argument, their fields joined by tabs
-- (the host takes at most 256 arguments per call: C sends at most 250).
--   ARGV[1] = op, then:
--   catput   (code name policy bp labels min_grade)...
--   catget   code...            catlist
--   certput  (number holder holder_name product model category label grade
--            issuer from to)...
--   certget  number...
--   certstatus  number status reason
--   calput   (day kind)...   kind: h, w, or n (normal: the weekday rule)
--   calget   from_day count
--   rqput    code claimant evidence    a reclaim of a registered code
--   rqdecide code approve reason       the centre's decision on it
--   orgdrop  id code                   the holder's entry, when it names code
--   orgput   id uscc name size       orgget id
--   orgmget  id...                   the entries of several parties
--   orgclaim uscc id    on the code's shard: the code is id's (or refused)
--   orgfree  uscc id    on the code's shard: id no longer holds the code
local op = ARGV[1]
local MAXCATS = 10000
local CERTF = {'holder', 'hname', 'product', 'model', 'cat', 'label', 'grade',
  'issuer', 'from', 'to', 'st', 'why', 'stt'}

if op == 'catput' then
  local new, recs = 0, {}
  for i = 2, #ARGV do
    recs[i - 1] = fields(ARGV[i], 6)
    if redis.call('HEXISTS', P .. 'cats', recs[i - 1][1]) == 0 then
      new = new + 1
    end
  end
  if redis.call('HLEN', P .. 'cats') + new > MAXCATS then
    return rej('RESOURCE_EXHAUSTED', 'the catalogue holds at most ' ..
      MAXCATS .. ' categories; this batch would pass it')
  end
  for _, f in ipairs(recs) do
    redis.call('HSET', P .. 'cats', f[1], table.concat({f[2], f[3], f[4],
      f[5], f[6], I(NOW)}, '\t'))
    gm.emit('category', 'code', f[1], 'name', f[2], 'policy', f[3],
      'bp', f[4], 'labels', f[5], 'min', f[6], 't', I(NOW))
  end
  return {I(#recs)}
end

if op == 'catget' then
  local out = {}
  for i = 2, #ARGV do
    out[#out + 1] = redis.call('HGET', P .. 'cats', ARGV[i]) or false
  end
  return out
end

if op == 'catlist' then
  return redis.call('HGETALL', P .. 'cats')
end

if op == 'certput' then
  local recs = {}
  for i = 2, #ARGV do recs[i - 1] = fields(ARGV[i], 11) end
  for _, f in ipairs(recs) do
    local k = P .. 'c:' .. f[1]
    -- An import never changes a status: suspensions and revocations are
    -- made (and undone) by certstatus only, with their reason and time.
    local st = redis.call('HMGET', k, 'st', 'why', 'stt')
    if not st[1] then st = {'1', '', I(NOW)} end
    redis.call('HSET', k, 'holder', f[2], 'hname', f[3], 'product', f[4],
      'model', f[5], 'cat', f[6], 'label', f[7], 'grade', f[8],
      'issuer', f[9], 'from', f[10], 'to', f[11], 'st', st[1], 'why', st[2],
      'stt', st[3])
    gm.emit('cert', 'no', f[1], 'holder', f[2], 'hname', f[3],
      'product', f[4], 'model', f[5], 'cat', f[6], 'label', f[7],
      'grade', f[8], 'issuer', f[9], 'from', f[10], 'to', f[11],
      'st', st[1], 'why', st[2], 'stt', st[3], 't', I(NOW))
  end
  return {I(#recs)}
end

if op == 'certget' then
  local out = {}
  for i = 2, #ARGV do
    local v = redis.call('HMGET', P .. 'c:' .. ARGV[i], unpack(CERTF))
    if v[1] then
      table.insert(v, 1, ARGV[i])
      out[#out + 1] = v
    else
      out[#out + 1] = false
    end
  end
  return out
end

if op == 'certstatus' then
  local no, st, why = ARGV[2], ARGV[3], ARGV[4]
  local k = P .. 'c:' .. no
  local cur = redis.call('HGET', k, 'st')
  if not cur then
    return rej('NOT_FOUND', 'no certificate ' .. no .. ' in the register')
  end
  if cur == '3' then
    return rej('FAILED_PRECONDITION', 'certificate ' .. no ..
      ' is revoked, which is final; import a new certificate instead')
  end
  if cur == st then
    local names = {['1'] = 'valid', ['2'] = 'suspended'}
    return rej('FAILED_PRECONDITION', 'certificate ' .. no .. ' is ' ..
      'already ' .. names[st])
  end
  redis.call('HSET', k, 'st', st, 'why', why, 'stt', I(NOW))
  local v = redis.call('HMGET', k, unpack(CERTF))
  gm.emit('cert_status', 'no', no, 'st', st, 'why', why, 'stt', I(NOW),
    'holder', v[1], 't', I(NOW))
  table.insert(v, 1, no)
  return v
end

if op == 'calput' then
  local n = #ARGV - 1
  for i = 2, #ARGV do
    local f = fields(ARGV[i], 2)
    local day, kind = f[1], f[2]
    -- 'n' is kept: back to the weekday rule even over a day the shipped
    -- calendar (calendar.csv) lists.
    redis.call('HSET', P .. 'days', day, kind)
    gm.emit('calendar', 'day', day, 'kind', kind, 't', I(NOW))
  end
  return {I(n)}
end

if op == 'calget' then
  local from, n = tonumber(ARGV[2]), tonumber(ARGV[3])
  local days = {}
  for d = from, from + n - 1 do days[#days + 1] = I(d) end
  local v = redis.call('HMGET', P .. 'days', unpack(days))
  local out = {}
  for i = 1, #days do out[i] = v[i] or '' end
  return out
end

if op == 'orgput' then
  local k = P .. 'p:' .. ARGV[2]
  redis.call('HSET', k, 'uscc', ARGV[3], 'name', ARGV[4], 'size', ARGV[5],
    'upd', I(NOW))
  gm.emit('party', 'id', ARGV[2], 'uscc', ARGV[3], 'name', ARGV[4],
    'size', ARGV[5], 't', I(NOW))
  return {ARGV[2], ARGV[3], ARGV[4], ARGV[5], I(NOW)}
end

-- One credit code, one party: P.u (on the shard of the code) says who
-- registered it, so nobody registers another's code and cites its
-- certificates as its own, and one enterprise is one bidder.
if op == 'orgclaim' then
  local code, id = ARGV[2], ARGV[3]
  local cur = redis.call('HGET', P .. 'u', code)
  if cur and cur ~= id then
    return rej('ALREADY_EXISTS', 'unified social credit code ' .. code ..
      ' is registered to ' .. cur .. ': an enterprise is one party of the ' ..
      'register; if the code is yours, ask the certification centre to ' ..
      'look into it')
  end
  if not cur then redis.call('HSET', P .. 'u', code, id) end
  return {code, id}
end

if op == 'orgfree' then
  local code, id = ARGV[2], ARGV[3]
  if redis.call('HGET', P .. 'u', code) == id then
    redis.call('HDEL', P .. 'u', code)
  end
  return {code}
end

-- Reclaims of a credit code (on the shard of the code): P.rq HASH code ->
-- claimant \t holder \t status \t lodged \t decided \t by \t evidence
-- \t reason.  One request per code: a decided one may be replaced.
local RQ = {'claimant', 'holder', 'st', 'lodged', 'decided', 'by',
  'evidence', 'reason'}
local function rq_get(code)
  local s = redis.call('HGET', P .. 'rq', code)
  if not s then return nil end
  local f = fields(s, 8)
  local r = {}
  for i, n in ipairs(RQ) do r[n] = f[i] end
  return r
end
local function rq_put(code, r)
  local f = {}
  for i, n in ipairs(RQ) do f[i] = r[n] end
  redis.call('HSET', P .. 'rq', code, table.concat(f, '\t'))
  gm.emit('reclaim', 'uscc', code, 'claimant', r.claimant, 'holder',
    r.holder, 'st', r.st, 'lodged', r.lodged, 'decided', r.decided, 'by',
    r.by, 'evidence', r.evidence, 'reason', r.reason, 't', I(NOW))
  return {code, r.claimant, r.holder, r.evidence, r.st, r.reason, r.by,
    r.lodged, r.decided}
end

if op == 'rqput' then
  local code, who, evidence = ARGV[2], ARGV[3], ARGV[4]
  local holder = redis.call('HGET', P .. 'u', code)
  if not holder then
    return rej('FAILED_PRECONDITION', 'nobody has registered unified ' ..
      'social credit code ' .. code .. '; register it yourself')
  end
  if holder == who then
    return rej('FAILED_PRECONDITION', 'unified social credit code ' .. code ..
      ' is registered to you already')
  end
  local r = rq_get(code)
  if r and r.st == 'pending' and r.claimant ~= who then
    return rej('FAILED_PRECONDITION', r.claimant .. ' has asked for ' ..
      'unified social credit code ' .. code .. ' already; the ' ..
      'certification centre decides on that first')
  end
  -- The claimant may send its request again while it is pending (better
  -- evidence): the new one replaces it, and the reply gives the evidence
  -- replaced, so nothing is lost unseen.
  local was = (r and r.st == 'pending') and r.evidence or ''
  local out = rq_put(code, {claimant = who, holder = holder, st = 'pending',
    lodged = I(NOW), decided = '0', by = '', evidence = evidence,
    reason = ''})
  out[#out + 1] = was
  return out
end

if op == 'rqdecide' then
  local code, approve, reason = ARGV[2], ARGV[3] == '1', ARGV[4]
  local r = rq_get(code)
  if not r or r.st ~= 'pending' then
    return rej('NOT_FOUND', 'no pending request for unified social credit ' ..
      'code ' .. code)
  end
  -- The centre decides on requests it is not party to: a participant
  -- holding the certifier role beside its own would otherwise take a code
  -- by approving its own request (or keep one by rejecting).
  if WHO == r.claimant or WHO == r.holder then
    return rej('PERMISSION_DENIED', r.claimant .. ' asks unified social ' ..
      'credit code ' .. code .. ' back from ' .. r.holder .. '; you are ' ..
      'party to it: another certifier of the centre decides')
  end
  local holder = redis.call('HGET', P .. 'u', code)
  if approve and holder ~= r.holder then
    return rej('FAILED_PRECONDITION', 'unified social credit code ' .. code ..
      ' is no longer registered to ' .. r.holder .. ' (now: ' ..
      (holder or 'nobody') .. '); reject this request')
  end
  r.st, r.decided, r.by, r.reason = approve and 'approved' or 'rejected',
    I(NOW), WHO, reason
  if approve then redis.call('HSET', P .. 'u', code, r.claimant) end
  return rq_put(code, r)
end

-- The holder of a code passed to its claimant loses its register entry
-- when the entry still names that code (on the holder's shard).
if op == 'orgdrop' then
  local k = P .. 'p:' .. ARGV[2]
  if redis.call('HGET', k, 'uscc') ~= ARGV[3] then return {'kept'} end
  redis.call('DEL', k)
  gm.emit('party_drop', 'id', ARGV[2], 'uscc', ARGV[3], 't', I(NOW))
  return {'dropped'}
end

if op == 'orgget' then
  local v = redis.call('HMGET', P .. 'p:' .. ARGV[2], 'uscc', 'name', 'size',
    'upd')
  if not v[1] then return {} end
  return {ARGV[2], v[1], v[2], v[3], v[4]}
end

if op == 'orgmget' then
  local out = {}
  for i = 2, #ARGV do
    local v = redis.call('HMGET', P .. 'p:' .. ARGV[i], 'uscc', 'size', 'name')
    out[#out + 1] = v[1] and v or false
  end
  return out
end

return rej('INTERNAL', 'catalogue: unknown op ' .. tostring(op))
