-- record_progress: the running attempt made progress, so it will not count toward the
-- job's tries (given back when it ends by a lapsed lease, a retry or a release).
-- ARGV: id, token
-- Returns 1, or 0 when the reservation no longer matched. Idempotent within one attempt.
local id, token = ARGV[1], ARGV[2]
local jkey = job_key(id)
expect(jkey, 'hash')
if token == '' or redis.call('HGET', jkey, 'r') ~= token then
  return 0
end
redis.call('HSET', jkey, 'pg', token)
return 1
