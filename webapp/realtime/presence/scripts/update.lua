-- Change fields of a connection's entry only if it still exists (a disconnect racing the
-- update must not leave half an entry behind).
-- KEYS[1]: the entry (a hash). ARGV: field, value, field, value, ...
-- Answers the whole entry as it was before (HGETALL), or false when there is none.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local before = redis.call('HGETALL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return before
