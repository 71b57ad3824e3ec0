-- award: the award notice, challenges to it, its passing to the next
-- bidder when the contracts are not signed in time, and the contracts
-- (one per buying agency) from signature to payment (tag t:<id>).
--   ARGV[1] = op, ARGV[2] = tender id, then:
--   cand      index                 the ranked bid at index (0 first)
--   award     mode(new|pass) index supplier value chal_until sign_until n,
--             then n x (contract agency value bond items)
--   none      award                 nobody left to pass it to
--   aget      award                 an award and its contracts
--   challenge text due complaint_until
--   answer    number upheld remedy answer
--   overdue   number                its answer deadline passed (the
--                                   "answer" deadline, id <tender>-Q<n>)
--   cget      number
--   sign      contract reference
--   deliver   contract note
--   accept    contract rejected note
--   pay       contract amount
--   kget      contract
local op, id = ARGV[1], ARGV[2]
local AWF = {'n', 'sup', 'value', 'st', 'notice', 'chu', 'sgu', 'ks', 'why'}
local KF = {'id', 'aw', 'agency', 'sup', 'value', 'st', 'items', 'sa', 'ss',
  'bond', 'bref', 'dv', 'ac', 'paid', 'note', 'cur'}
-- due: the last ms of the 7 working days the agency has to answer (GP Law
-- art. 53); over: when that passed unanswered (0: it did not); cpu: the
-- last ms the challenger may complain to the finance department, 15
-- working days after `due` (GP Law art. 55: recorded, not modelled).
local CHF = {'id', 'aw', 'who', 'text', 'st', 'remedy', 'answer', 'lodged',
  'answered', 'due', 'over', 'cpu'}

local function rec(key, fields)
  local v = redis.call('HMGET', key, unpack(fields))
  if not v[1] then return nil end
  local r = {}
  for i, f in ipairs(fields) do r[f] = v[i] or '' end
  return r
end
local function flat(r, fields)
  local out = {}
  for i, f in ipairs(fields) do out[i] = r[f] or '' end
  return out
end
local function challenge_emit(ch)
  gm.emit('challenge', 'id', id, 'q', ch.id, 'aw', ch.aw, 'who', ch.who,
    'text', ch.text, 'st', ch.st, 'remedy', ch.remedy, 'answer', ch.answer,
    'lodged', ch.lodged, 'answered', ch.answered, 'due', ch.due or '0',
    'over', ch.over or '0', 'cpu', ch.cpu or '0', 't', I(NOW))
end
local function award_emit(a, action)
  gm.emit('award', 'id', id, 'n', a.n, 'supplier', a.sup, 'value', a.value,
    'st', a.st, 'notice', a.notice, 'chu', a.chu, 'sgu', a.sgu,
    'why', a.why or '', 'action', action, 't', I(NOW))
end
local function contract_emit(k, action)
  gm.emit('contract', 'id', id, 'k', k.id, 'aw', k.aw, 'agency', k.agency,
    'supplier', k.sup, 'value', k.value, 'st', k.st, 'items', k.items,
    'sa', k.sa, 'ss', k.ss, 'bond', k.bond, 'bref', k.bref, 'dv', k.dv,
    'ac', k.ac, 'paid', k.paid, 'note', k.note, 'cur', k.cur,
    'action', action,
    't', I(NOW))
end
-- Ends award n and its contracts (passed on, challenged, cancelled).
local function award_end(n, why, action)
  local a = rec(P .. 'aw:' .. n, AWF)
  if not a or a.st == 'cancelled' then return end
  a.st, a.why = 'cancelled', why
  redis.call('HSET', P .. 'aw:' .. n, 'st', 'cancelled', 'why', why)
  award_emit(a, action)
  for cid in string.gmatch(a.ks, '[^,]+') do
    local k = rec(P .. 'k:' .. cid, KF)
    if k and k.st ~= 'cancelled' then
      k.st, k.note = 'cancelled', why
      redis.call('HSET', P .. 'k:' .. cid, 'st', 'cancelled', 'note', why)
      contract_emit(k, 'cancelled')
    end
  end
  -- Challenges still open on it have nothing left to decide.
  for _, c in ipairs(redis.call('SMEMBERS', P .. 'cho')) do
    redis.call('HSET', P .. 'ch:' .. c, 'st', 'closed', 'answer',
      'the award was ' .. why, 'answered', I(NOW))
    local ch = rec(P .. 'ch:' .. c, CHF)
    gm.deadline_cancel('answer', ch.id)
    challenge_emit(ch)
  end
  redis.call('DEL', P .. 'cho')
  redis.call('HSET', T, 'chopen', '0')
  gm.deadline_cancel('sign', id)
end
local function rank_key(t) return t.am == '1' and 'rt' or 'rk' end
-- Awards are numbered across rounds: those of a round follow the last one
-- made before it (aw0, set by a re-evaluation), so the rank index of award
-- n is n - aw0 - 1 and no round's award takes an earlier one's number.
local function aw0(t) return tonumber(t.aw0 or '0') or 0 end
local function member_who(m) return string.match(m, '^%d+|%x+|(.*)$') end

-- The bid at rank index ARGV[3] ('next': the one after the award in
-- force), with what C needs to make its contracts, and whether the award in
-- force is due to pass on (its signing period over, no challenge open, not
-- every contract signed).
if op == 'cand' then
  local t = tender('am', 'aw', 'aw0', 'round', 'def', 'cur', 'lead', 'bond',
    'chopen')
  if not t then return {'gone', '0', false} end
  local index = ARGV[3] == 'next' and tonumber(t.aw) - aw0(t) or
    tonumber(ARGV[3])
  local due = '0'
  if t.st == 'awarded' then
    local sgu = redis.call('HGET', P .. 'aw:' .. t.aw, 'sgu')
    if NOW > tonumber(sgu) and t.chopen == '0' then due = '1' end
  end
  local m = redis.call('ZRANGE', P .. rank_key(t), index, index)[1]
  local who = m and member_who(m)
  return {t.st, t.aw, who or false, who and redis.call('HGET', P .. 'o', who)
    or '', t.def, t.bond, t.cur, t.lead, due, I(index),
    I(aw0(t) + index + 1)}
end

if op == 'award' then
  local mode, index = ARGV[3], tonumber(ARGV[4])
  local who, value, chu, sgu = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
  local t = tender('am', 'aw', 'aw0', 'lead', 'ver', 'dl', 'pub', 'round',
    'nb', 'chopen', 'cur')
  if not t then return no_tender(id) end
  if mode == 'new' then
    if t.lead ~= WHO then
      return rej('PERMISSION_DENIED', 'only ' .. t.lead .. ', the agency ' ..
        'that runs tender ' .. id .. ', may award it')
    end
    if t.st ~= 'evaluated' then
      return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' .. t.st ..
        (t.st == 'scoring' and '; the committee has not scored every ' ..
         'valid bid yet' or (t.st == 'awarded' and ' already' or
         '; an award follows the evaluation')))
    end
    if index ~= 0 then return rej('INTERNAL', 'a first award is rank 1') end
  else
    if t.st ~= 'awarded' or tonumber(t.aw) - aw0(t) ~= index or
        t.chopen ~= '0' or
        NOW <= tonumber(redis.call('HGET', P .. 'aw:' .. t.aw, 'sgu')) then
      return {'stale'}
    end
  end
  local m = redis.call('ZRANGE', P .. rank_key(t), index, index)[1]
  if not m or member_who(m) ~= who then
    return rej('FAILED_PRECONDITION', 'the ranking of tender ' .. id ..
      ' changed; award it again')
  end
  if mode == 'pass' then
    award_end(t.aw, 'not signed within 30 days of the notice', 'passed')
  end
  local n = I(aw0(t) + index + 1)
  local ks, nk = {}, tonumber(ARGV[9])
  for i = 0, nk - 1 do
    local a = 10 + i * 5
    local k = {id = ARGV[a], aw = n, agency = ARGV[a + 1], sup = who,
      value = ARGV[a + 2], st = 'pending', items = ARGV[a + 4], sa = '0',
      ss = '0', bond = ARGV[a + 3], bref = '', dv = '0', ac = '0',
      paid = '0', note = '', cur = t.cur}
    local kv = {}
    for _, f in ipairs(KF) do kv[#kv + 1] = f; kv[#kv + 1] = k[f] end
    redis.call('HSET', P .. 'k:' .. k.id, unpack(kv))
    ks[#ks + 1] = k.id
    contract_emit(k, 'pending')
  end
  local a = {n = n, sup = who, value = value, st = 'pending', notice = I(NOW),
    chu = chu, sgu = sgu, ks = table.concat(ks, ',')}
  local av = {}
  for _, f in ipairs(AWF) do av[#av + 1] = f; av[#av + 1] = a[f] or '' end
  redis.call('HSET', P .. 'aw:' .. n, unpack(av))
  redis.call('HSET', T, 'st', 'awarded', 'aw', n, 'chopen', '0', 'upd',
    I(NOW))
  -- sgu is the last ms a contract may be signed: it passes on after it.
  gm.deadline('sign', id, tonumber(sgu) + 1)
  award_emit(a, 'notice')
  t.id, t.st, t.aw = id, 'awarded', n
  tender_emit('awarded', t)
  return {'awarded', n}
end

if op == 'none' then
  local t = tender('aw', 'lead', 'ver', 'dl', 'pub', 'round', 'nb', 'chopen')
  if not t then return no_tender(id) end
  if t.st ~= 'awarded' or t.aw ~= ARGV[3] or t.chopen ~= '0' or
      NOW <= tonumber(redis.call('HGET', P .. 'aw:' .. t.aw, 'sgu')) then
    return {'stale'}
  end
  award_end(t.aw, 'not signed within 30 days of the notice', 'passed')
  t.id, t.st, t.reason = id, 'unsuccessful',
    'no bidder left to sign the contract'
  redis.call('HSET', T, 'st', t.st, 'reason', t.reason, 'upd', I(NOW))
  ended(id)
  tender_emit('unsuccessful', t)
  return {'unsuccessful'}
end

if op == 'aget' then
  local a = rec(P .. 'aw:' .. ARGV[3], AWF)
  if not a then return {} end
  local out = {flat(a, AWF)}
  for cid in string.gmatch(a.ks, '[^,]+') do
    out[#out + 1] = flat(rec(P .. 'k:' .. cid, KF), KF)
  end
  return out
end

if op == 'challenge' then
  local t = tender('aw', 'chn', 'chopen', 'lead')
  if not t then return no_tender(id) end
  if t.st ~= 'awarded' then
    return rej('FAILED_PRECONDITION', 'tender ' .. id .. ' is ' .. t.st ..
      '; a challenge is lodged against an award notice')
  end
  local a = rec(P .. 'aw:' .. t.aw, AWF)
  if NOW > tonumber(a.chu) then
    return rej('FAILED_PRECONDITION', 'the challenge period of tender ' ..
      id .. ' ended at ' .. when(tonumber(a.chu)) .. ' (7 working days ' ..
      'from the award notice)')
  end
  local b = bid_get(WHO)
  if not b then
    return rej('PERMISSION_DENIED', 'only a supplier that bid on tender ' ..
      id .. ' may challenge its award')
  end
  -- A bid withdrawn before the deadline took no part in the evaluation.
  if b.st == 'withdrawn' then
    return rej('PERMISSION_DENIED', 'you withdrew your bid on tender ' ..
      id .. ' before its deadline; only the suppliers whose bids were ' ..
      'opened may challenge its award')
  end
  if WHO == a.sup then
    return rej('FAILED_PRECONDITION', 'you won tender ' .. id ..
      '; a challenge is for the other bidders')
  end
  local k = tonumber(t.chn or '0') + 1
  local c = {id = id .. '-Q' .. I(k), aw = t.aw, who = WHO, text = ARGV[3],
    st = 'open', remedy = '0', answer = '', lodged = I(NOW), answered = '0',
    due = ARGV[4], over = '0', cpu = ARGV[5]}
  local cv = {}
  for _, f in ipairs(CHF) do cv[#cv + 1] = f; cv[#cv + 1] = c[f] end
  redis.call('HSET', P .. 'ch:' .. I(k), unpack(cv))
  redis.call('SADD', P .. 'cho', I(k))
  local open = tonumber(t.chopen) + 1
  redis.call('HSET', T, 'chn', I(k), 'chopen', I(open))
  if open == 1 then redis.call('HSET', T, 'chpause', I(NOW)) end
  gm.deadline('answer', c.id, tonumber(c.due) + 1)
  challenge_emit(c)
  local out = flat(c, CHF)
  out[#out + 1] = t.lead
  return out
end

if op == 'answer' then
  local k, upheld, remedy = ARGV[3], ARGV[4] == '1', ARGV[5]
  local t = tender('aw', 'chopen', 'chpause', 'lead', 'ver', 'dl', 'pub',
    'round', 'nb')
  if not t then return no_tender(id) end
  if t.lead ~= WHO then
    return rej('PERMISSION_DENIED', 'only ' .. t.lead .. ', the agency ' ..
      'that runs tender ' .. id .. ', answers its challenges')
  end
  local c = rec(P .. 'ch:' .. k, CHF)
  if not c then
    return rej('NOT_FOUND', 'no challenge ' .. id .. '-Q' .. k)
  end
  if c.st ~= 'open' then
    return rej('FAILED_PRECONDITION', 'challenge ' .. c.id .. ' is ' ..
      c.st .. ' already')
  end
  -- Who is told the answer (GP Law art. 53: the challenger and the other
  -- suppliers concerned): the agency and every supplier whose bid was
  -- opened, read before a remedy changes anything.
  local told = redis.call('HKEYS', P .. 'o')
  c.st, c.remedy, c.answer, c.answered = upheld and 'upheld' or 'dismissed',
    upheld and remedy or '0', ARGV[6], I(NOW)
  redis.call('HSET', P .. 'ch:' .. k, 'st', c.st, 'remedy', c.remedy,
    'answer', c.answer, 'answered', c.answered)
  redis.call('SREM', P .. 'cho', k)
  gm.deadline_cancel('answer', c.id)
  challenge_emit(c)
  t.id = id
  if not upheld then
    local open = tonumber(t.chopen) - 1
    redis.call('HSET', T, 'chopen', I(open))
    if open == 0 then
      -- The signing period stood still while challenges were open.
      local a = rec(P .. 'aw:' .. t.aw, AWF)
      local sgu = tonumber(a.sgu) + (NOW - tonumber(t.chpause))
      redis.call('HSET', P .. 'aw:' .. t.aw, 'sgu', I(sgu))
      gm.deadline('sign', id, sgu + 1)
      -- The ledger and the feed learn the new end of the signing period.
      a.sgu = I(sgu)
      award_emit(a, 'resumed')
    end
  elseif remedy == '2' then
    award_end(t.aw, 'cancelled: challenge ' .. c.id .. ' upheld',
      'cancelled')
    t.st, t.reason = 'cancelled', 'challenge ' .. c.id .. ' upheld'
    redis.call('HSET', T, 'st', t.st, 'reason', t.reason, 'upd', I(NOW))
    ended(id)
    tender_emit('cancelled', t)
  else
    award_end(t.aw, 'cancelled for a re-evaluation: challenge ' .. c.id ..
      ' upheld', 'cancelled')
    local round = I(tonumber(t.round) + 1)
    redis.call('UNLINK', P .. 'rk', P .. 'rt')
    t.st, t.round = 'opening', round
    redis.call('HSET', T, 'st', 'opening', 'round', round, 'evat', I(NOW),
      'aw', '0', 'aw0', t.aw, 'prog', '0', 'upd', I(NOW))
    t.aw = '0'
    gm.deadline('open', id, NOW)
    tender_emit('reevaluating', t)
  end
  local out = flat(c, CHF)
  out[#out + 1] = t.lead
  for _, who in ipairs(told) do out[#out + 1] = who end
  return out
end

-- The agency let the 7 working days pass: the challenge stays open (a late
-- answer still counts), and the challenger and the agency learn that the
-- challenger may now complain to the finance department.
if op == 'overdue' then
  local t = tender('lead')
  if not t then return {'stale'} end
  local c = rec(P .. 'ch:' .. ARGV[3], CHF)
  if not c or c.st ~= 'open' or (c.over ~= '' and c.over ~= '0') or
      c.due == '' or NOW <= tonumber(c.due) then
    return {'stale'}
  end
  c.over = I(NOW)
  redis.call('HSET', P .. 'ch:' .. ARGV[3], 'over', c.over)
  challenge_emit(c)
  local out = flat(c, CHF)
  out[#out + 1] = t.lead
  return out
end

if op == 'cget' then
  local c = rec(P .. 'ch:' .. ARGV[3], CHF)
  if not c then return {} end
  return flat(c, CHF)
end

-- Contracts: P.k:<id>.
local function contract(cid)
  local k = rec(P .. 'k:' .. cid, KF)
  if not k then
    return nil, rej('NOT_FOUND', 'no contract ' .. cid)
  end
  return k
end

if op == 'sign' then
  local t = tender('aw', 'chopen', 'lead', 'ver', 'dl', 'pub', 'round', 'nb')
  if not t then return no_tender(id) end
  local k, e = contract(ARGV[3])
  if e then return e end
  local side = (WHO == k.agency and 'sa') or (WHO == k.sup and 'ss')
  if not side then
    return rej('PERMISSION_DENIED', 'contract ' .. k.id .. ' is between ' ..
      k.agency .. ' and ' .. k.sup .. '; only they sign it')
  end
  if k.st ~= 'pending' or k.aw ~= t.aw or t.st ~= 'awarded' then
    return rej('FAILED_PRECONDITION', 'contract ' .. k.id .. ' is ' .. k.st ..
      '; only a pending contract of the award in force is signed')
  end
  local a = rec(P .. 'aw:' .. t.aw, AWF)
  if NOW <= tonumber(a.chu) then
    return rej('FAILED_PRECONDITION', 'suppliers may challenge the award ' ..
      'until ' .. when(tonumber(a.chu)) .. '; sign after that')
  end
  if tonumber(t.chopen) > 0 then
    return rej('FAILED_PRECONDITION', 'a challenge to the award of tender ' ..
      id .. ' is open; nothing is signed until ' .. t.lead .. ' answers it')
  end
  if NOW > tonumber(a.sgu) then
    return rej('FAILED_PRECONDITION', 'the signing period ended at ' ..
      when(tonumber(a.sgu)) .. '; the award passes to the next bidder')
  end
  if k[side] ~= '0' then
    return rej('ALREADY_EXISTS', 'you signed contract ' .. k.id ..
      ' already')
  end
  -- The agency signs once it holds the performance bond the tender asks
  -- for: its signature records the bond's reference.
  if side == 'sa' and tonumber(k.bond) > 0 and ARGV[4] == '' then
    return rej('INVALID_ARGUMENT', 'contract ' .. k.id .. ' requires a ' ..
      'performance bond of ' .. yuan(tonumber(k.bond)) .. ' ' .. k.cur ..
      '; sign once you hold it, giving its reference: gm procurement ' ..
      'sign ' .. k.id .. ' --bond-ref REF (reference)')
  end
  k[side] = I(NOW)
  redis.call('HSET', P .. 'k:' .. k.id, side, k[side])
  if side == 'sa' then
    k.bref = ARGV[4]
    redis.call('HSET', P .. 'k:' .. k.id, 'bref', k.bref)
  end
  local action = 'signed'
  if k.sa ~= '0' and k.ss ~= '0' then
    k.st, action = 'active', 'active'
    redis.call('HSET', P .. 'k:' .. k.id, 'st', 'active')
    local all = true
    for cid in string.gmatch(a.ks, '[^,]+') do
      if redis.call('HGET', P .. 'k:' .. cid, 'st') ~= 'active' then
        all = false
      end
    end
    if all then
      redis.call('HSET', P .. 'aw:' .. t.aw, 'st', 'active')
      a.st = 'active'
      award_emit(a, 'active')
      t.id, t.st = id, 'contracted'
      redis.call('HSET', T, 'st', 'contracted', 'upd', I(NOW))
      gm.deadline_cancel('sign', id)
      tender_emit('contracted', t)
    end
  end
  contract_emit(k, action)
  return flat(k, KF)
end

if op == 'deliver' or op == 'accept' or op == 'pay' then
  local t = tender('lead', 'ver', 'dl', 'pub', 'round', 'nb', 'aw')
  if not t then return no_tender(id) end
  local k, e = contract(ARGV[3])
  if e then return e end
  local party = op == 'deliver' and k.sup or k.agency
  if WHO ~= party then
    return rej('PERMISSION_DENIED', (op == 'deliver' and 'the supplier, ' or
      'the agency, ') .. party .. ', records the ' .. op ..
      (op == 'pay' and 'ment' or (op == 'accept' and 'ance' or 'y')) ..
      ' of contract ' .. k.id)
  end
  if k.st ~= 'active' then
    return rej('FAILED_PRECONDITION', 'contract ' .. k.id .. ' is ' .. k.st ..
      (k.st == 'pending' and '; both parties sign it first' or ''))
  end
  local action = op == 'deliver' and 'delivered' or 'paid'
  if op == 'deliver' then
    if k.ac ~= '0' then
      return rej('FAILED_PRECONDITION', 'contract ' .. k.id ..
        ' was accepted already')
    end
    k.dv, k.note = I(NOW), ARGV[4]
  elseif op == 'accept' then
    if k.dv == '0' then
      return rej('FAILED_PRECONDITION', 'nothing was delivered on contract ' ..
        k.id .. ' yet')
    end
    if k.ac ~= '0' then
      return rej('FAILED_PRECONDITION', 'contract ' .. k.id ..
        ' was accepted already')
    end
    if ARGV[4] == '1' then
      k.dv, k.note, action = '0', ARGV[5], 'rejected'
    else
      k.ac, k.note, action = I(NOW), ARGV[5], 'accepted'
    end
  else
    -- Payment follows the acceptance of the delivery (no advance payment
    -- is a term of these contracts).
    if k.ac == '0' then
      return rej('FAILED_PRECONDITION', 'contract ' .. k.id .. ' is not ' ..
        'accepted yet: ' .. (k.dv == '0' and ('nothing was delivered; ' ..
        'payment follows the acceptance of the delivery: the supplier, ' ..
        k.sup .. ', records the delivery first (gm procurement deliver ' ..
        k.id .. '), then you accept it (gm procurement accept ' .. k.id ..
        ') and pay') or ('its delivery awaits your acceptance; payment ' ..
        'follows the acceptance of the delivery: accept it first (gm ' ..
        'procurement accept ' .. k.id .. '), then pay')))
    end
    local amount = tonumber(ARGV[4])
    local left = tonumber(k.value) - tonumber(k.paid)
    if amount > left then
      return rej('INVALID_ARGUMENT', 'payment ' .. yuan(amount) ..
        ' yuan is more than the ' .. yuan(left) .. ' yuan left to pay on ' ..
        'contract ' .. k.id)
    end
    k.paid = I(tonumber(k.paid) + amount)
    gm.emit('payment', 'id', id, 'k', k.id, 'amount', ARGV[4], 't', I(NOW))
  end
  if k.ac ~= '0' and k.paid == k.value then
    k.st, action = 'terminated', 'terminated'
  end
  redis.call('HSET', P .. 'k:' .. k.id, 'dv', k.dv, 'ac', k.ac, 'paid',
    k.paid, 'note', k.note, 'st', k.st)
  contract_emit(k, action)
  if k.st == 'terminated' then
    local a = rec(P .. 'aw:' .. k.aw, AWF)
    local all = true
    for cid in string.gmatch(a.ks, '[^,]+') do
      if redis.call('HGET', P .. 'k:' .. cid, 'st') ~= 'terminated' then
        all = false
      end
    end
    if all then
      t.id, t.st = id, 'complete'
      redis.call('HSET', T, 'st', 'complete', 'upd', I(NOW))
      ended(id)
      tender_emit('complete', t)
    end
  end
  return flat(k, KF)
end

if op == 'kget' then
  local k, e = contract(ARGV[3])
  if e then return e end
  return flat(k, KF)
end

return rej('INTERNAL', 'award: unknown op ' .. tostring(op))
