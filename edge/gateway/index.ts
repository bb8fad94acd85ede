export { createGateway, type Gateway } from "./gateway.js";
export { createBreaker, failedDependency, withTimeout, type Breaker, type BreakerOptions, type DependencyState } from "./breaker.js";
export { createBackpressure, backlogFromGroups, type Backpressure, type BackpressureOptions } from "./backpressure.js";
export { createRateLimiter, rateLimitKey, DEFAULT_MESSAGE_RATES, type RateLimiter, type TierRates } from "./rate-limit.js";
