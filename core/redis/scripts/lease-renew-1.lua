-- Extend a lease only if the caller still holds it (compare-and-set on "<owner>|<token>").
--
-- KEYS[1] lease key
-- ARGV[1] the value the caller wrote when it acquired the lease
-- ARGV[2] time to live (ms)
--
-- Returns 1 when extended, 0 when the lease expired or another owner holds it now.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
