-- retry_later: put a reserved job back, due in delay_s.
-- ARGV: id, token, delay_s, error_json|"", count_exception (0/1), refund_attempt (0/1)
-- The attempt is given back when refund_attempt is 1 or the attempt recorded progress
-- (once, not twice).
-- Returns 1, or 0 when the reservation no longer matched.
local id, token = ARGV[1], ARGV[2]
local jkey = job_key(id)
expect(jkey, 'hash')
if token == '' or redis.call('HGET', jkey, 'r') ~= token then
  return 0
end
expect(K_RESERVED, 'zset')
expect(K_WAITING, 'zset')
local delay_s = tonumber(ARGV[3])
local now = server_now()
local av_s = fmt(now + delay_s)
local st = 'pending'
if delay_s > 0 then
  st = 'delayed'
end
redis.call('ZREM', K_RESERVED, id)
redis.call('HSET', jkey, 'st', st, 'av', av_s, 'r', '', 'lu', '')
if ARGV[4] ~= '' then
  redis.call('HSET', jkey, 'e', ARGV[4])
end
if ARGV[5] == '1' then
  redis.call('HINCRBY', jkey, 'x', 1)
end
settle_progress(jkey, token, ARGV[6] == '1')
redis.call('ZADD', K_WAITING, av_s, id)
return 1
