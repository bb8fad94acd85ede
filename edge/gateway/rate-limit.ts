import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { TributaryError, errorMessage } from "../../core/errors.js";
import type { RedisClient } from "../../core/redis/connection.js";
import type { Principal, Tier } from "../auth/principal.js";

/**
 * Per-user rate limits whose rate depends on the user's tier (CONTRACT §3: anonymous 10 messages/min,
 * registered 60, privileged 600), kept in Redis so every edge node shares one bucket per user.
 */
export type TierRates = Record<Tier, number>;

export const DEFAULT_MESSAGE_RATES: TierRates = { anonymous: 10, registered: 60, privileged: 600 };

export interface RateLimiter {
  /** Take one token from the principal's bucket of `kind`; throws 429 RATE_LIMITED with Retry-After. */
  consume(principal: Principal, kind?: string): Promise<void>;
}

const SCRIPT = readFileSync(new URL("./rate-limit.lua", import.meta.url), "utf8");
const SHA = createHash("sha1").update(SCRIPT).digest("hex");

export function rateLimitKey(kind: string, principal: Principal): string {
  return `rl:${kind}:${principal.tenantId}:${principal.userId}`;
}

export function createRateLimiter(redis: RedisClient, rates: TierRates = DEFAULT_MESSAGE_RATES): RateLimiter {
  async function run(key: string, cap: number, perMin: number): Promise<unknown> {
    try {
      return await redis.evalsha(SHA, 1, key, cap, perMin, 1);
    } catch (e) {
      // First use on this server (or after SCRIPT FLUSH): send the body once.
      if (!/NOSCRIPT/.test(errorMessage(e))) throw e;
      return redis.eval(SCRIPT, 1, key, cap, perMin, 1);
    }
  }
  return {
    async consume(principal, kind = "msg") {
      const perMin = rates[principal.tier];
      const reply = await run(rateLimitKey(kind, principal), perMin, perMin);
      const [allowed, waitMs] = Array.isArray(reply) ? reply.map(Number) : [1, 0];
      if (allowed === 1) return;
      const retryAfter = Math.max(1, Math.ceil((waitMs ?? 1000) / 1000));
      throw new TributaryError("RATE_LIMITED", `rate limit of ${perMin} messages per minute for tier ${principal.tier} exceeded`, {
        retryAfter,
        details: { limitPerMinute: perMin, retryAfterSeconds: retryAfter },
      });
    },
  };
}
