-- registry: the list of instruments, under the fixed tag "_"
-- (gm:{carbon:_}:list).  instrument.create adds to it after creating the
-- instrument under its own tag: two calls, both idempotent, so a create
-- whose second call failed is repaired by running it again.
--   ARGV 'add', symbol | 'list'
if ARGV[1] == 'add' then
  redis.call('SADD', KEYS[1], ARGV[2])
  return {ARGV[2]}
end
return redis.call('SORT_RO', KEYS[1], 'ALPHA')
