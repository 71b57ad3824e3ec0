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
-- An amount, carried in hundredths of its currency's unit (fen for CNY,
-- cents for USD), as people read it: with the currency's ISO 4217 decimals
-- (MINOR: the codes whose minor unit is not 2, from greenmarket/iso4217.h),
-- or with two when a record stored before the decimals were checked holds a
-- fraction the currency has no digit for (0.50 JPY): shown as it is.
local function money(f, cur)
  local d = MINOR[cur] or 2
  local whole, cents = math.floor(f / 100), f % 100
  if d == 0 and cents == 0 then return string.format('%d %s', whole, cur) end
  if d == 1 and cents % 10 == 0 then
    return string.format('%d.%d %s', whole, cents / 10, cur)
  end
  return string.format('%d.%02d%s %s', whole, cents,
    string.rep('0', d > 2 and d - 2 or 0), cur)
end
-- basis points as a percent: 345 -> '3.45%'
local function pct(bp)
  return string.format('%d.%02d%%', math.floor(bp / 100), bp % 100)
end
-- nil, or the refusal of `what` f with more decimals than its currency has.
local function decimals_bad(what, f, cur)
  local d = MINOR[cur] or 2
  if d >= 2 or f % (d == 0 and 100 or 10) == 0 then return nil end
  return rej('INVALID_ARGUMENT', what .. ' ' .. money(f, cur) .. ' has ' ..
    'more decimals than ' .. cur .. ' has (' .. I(d) .. ', ISO 4217); give ' ..
    (d == 0 and 'a whole amount' or 'at most ' .. I(d) .. ' decimal') ..
    ' in ' .. cur)
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

-- ms as "YYYY-MM-DD hh:mm" in Asia/Shanghai (the civil date of a day
-- number, as in greenmarket/date.h).
local function stamp(ms)
  local t = ms + TZ_MS
  local days = math.floor(t / DAY_MS)
  local mins = math.floor((t - days * DAY_MS) / 60000)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) +
    math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02d %02d:%02d', y, m, d,
    math.floor(mins / 60), mins % 60)
end
