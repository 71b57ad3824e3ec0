#!lua name=gm_bench_ideal
-- The ideal floor (compare.c, --ideal; ideal.c): the fewest Redis commands
-- one plain limit order needs with every guarantee kept, in the most
-- favourable layout, run with no logic at all.  ideal.c builds each order's
-- commands from what the bare match did with the same order and loads them
-- here before a round (ideal_load, outside the measurement); the round then
-- calls ideal_run once per order, with the KEYS and ARGV a real order call
-- would carry (4 keys, 8 arguments) and the order's index last: it runs
-- that order's commands, nothing else.  ideal_empty takes the same call
-- and does nothing: the fixed cost of one FCALL.  Never used by gmd.
local T = {}

-- ARGV: index, then per command its argument count and its arguments.
redis.register_function('ideal_load', function(_, a)
  local c, i, n = {}, 2, #a
  while i <= n do
    local k = tonumber(a[i])
    c[#c + 1] = {unpack(a, i + 1, i + k)}
    i = i + k + 1
  end
  T[tonumber(a[1])] = c
  return #c
end)

-- A full collection, outside the measured rounds: after a load (its
-- argument tables) and after a clear, so no round sweeps another's garbage.
redis.register_function('ideal_gc', function()
  collectgarbage('collect')
  return 1
end)

redis.register_function('ideal_clear', function()
  T = {}
  collectgarbage('collect')
  return 1
end)

redis.register_function('ideal_run', function(_, a)
  local c, call = T[tonumber(a[#a])], redis.call
  for j = 1, #c do call(unpack(c[j])) end
  return #c
end)

redis.register_function('ideal_empty', function()
  return 1
end)
