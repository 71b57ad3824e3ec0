-- Signs the guestbook: one atomic step in Redis.
-- KEYS[1] the guestbook counter; ARGV[1] the message.
-- Validate everything before the first write: Redis does not roll a script
-- back when it fails halfway.
local message = ARGV[1]
if message == nil or #message == 0 then
  return gm.reject('INVALID_ARGUMENT', 'message is empty; pass message=TEXT')
end
if #message > 280 then
  return gm.reject('INVALID_ARGUMENT',
    'message is ' .. #message .. ' bytes; keep it to 280')
end
local number = redis.call('INCR', KEYS[1])
-- The outbox entry, appended in this same atomic step; the settle callback
-- turns it into a ledger row.  Values are strings on the stream.
gm.emit('signed', 'participant', gm.participant, 'message', message,
        'number', tostring(number), 'time_ms', string.format('%d', gm.now))
return number
