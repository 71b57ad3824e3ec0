-- floor: carbon's Redis commands with none of its logic, the least its Lua
-- can cost with this data layout (compare.c, --floor; floor.c).  ARGV[1] is
-- one carbon place call's commands, in its order, as MONITOR showed them
-- (floor.c records them from a run of carbon's own over instruments of
-- their own, on a copy of their keys): a msgpack array of argument arrays,
-- the host's idempotency GET and SET and the outbox XADDs included.  This
-- runs them and answers how many ran.  With ARGV[2] ('n') it only unpacks
-- them: what the floor itself adds, taken off its figure.  Never used by
-- gmd.
local c = cmsgpack.unpack(ARGV[1])
if ARGV[2] then return #c end
for i = 1, #c do redis.call(unpack(c[i])) end
return #c
