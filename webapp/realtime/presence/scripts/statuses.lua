-- What the status rule needs to know of each user, gathered inside Redis in one call: a room
-- page's join asks for all of its members at once, and one command per open tab made that
-- O(tabs) round-trip replies per join. The rule itself is applied in Python
-- (webapp/realtime/presence/store.py, user_status), the one place it is written.
-- ARGV: the "user:", "conn:" and "chosen:" key prefixes, then user ids.
-- Answers two strings per user: the best status among their tabs ('online' if any tab is
-- online, else 'away' if they have a tab, else ''), and the status they chose ('away' or '').
local answers = {}
for i = 4, #ARGV do
  local best = ''
  for _, sid in ipairs(redis.call('SMEMBERS', ARGV[1] .. ARGV[i])) do
    local status = redis.call('HGET', ARGV[2] .. sid, 'status')
    if status == 'online' then best = status break end
    if status then best = status end
  end
  answers[#answers + 1] = best
  answers[#answers + 1] = redis.call('GET', ARGV[3] .. ARGV[i]) or ''
end
return answers
