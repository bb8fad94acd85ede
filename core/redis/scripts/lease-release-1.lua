-- Give a lease up only if the caller still holds it, so a late release never frees a lease that
-- has meanwhile passed to another owner.
--
-- KEYS[1] lease key
-- ARGV[1] the value the caller wrote when it acquired the lease
--
-- Returns 1 when released, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
