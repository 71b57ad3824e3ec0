-- finance lib: prepended to every finance script, after the constants
-- finance.c generates from finance.proto and [market.finance]:
--   ST       state name -> code (gm.finance.State: ST.open == 1, ...)
--   SYNC_MS  how long after a transition its sync deadline falls (index.c)
--
-- KEYS[1] is "<P>k" where P = "gm:{finance:<tag>}:"; every key a script
-- touches is P .. name, so all of them share the tag (one Redis Cluster
-- slot).
--
-- Lua numbers are doubles: every amount stays below 2^53 because C refuses
-- amounts above GM_FINANCE_MAX_AMOUNT (10^14 fen) before a script runs, and
-- no script adds amounts up.  Numbers go into strings only through I()
-- ('%d'), never tostring() (which prints 1e+14).
local P = string.sub(KEYS[1], 1, -2)
local NOW = tonumber(gm.now)
local function I(x) return string.format('%d', x) end
local function rej(status, msg) return gm.reject(status, msg) end
-- fen as "yuan (fen)" for messages: the CLI speaks yuan, the API fen.
local function yuan(f)
  return string.format('%d.%02d yuan (%d fen)', math.floor(f / 100), f % 100, f)
end

-- "a,b,c" -> {'a', 'b', 'c'} (empty parts dropped)
local function split(s, sep)
  local t = {}
  for part in string.gmatch(s or '', '[^' .. sep .. ']+') do t[#t + 1] = part end
  return t
end

-- HGETALL of a key as a Lua table.
local function hash(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
