-- Count one event within a sliding window, atomically, so that workers racing never let one
-- more through than the limit.
-- KEYS[1]: the counter (a sorted set of hit times). ARGV: now, window (s), limit, a unique member.
-- Answers 1 when counted, 0 when the limit is reached.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
return 1
