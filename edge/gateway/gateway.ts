import { partitionOf } from "../../core/partition.js";
import type { Principal } from "../auth/principal.js";
import type { Backpressure } from "./backpressure.js";
import type { Breaker } from "./breaker.js";
import type { RateLimiter } from "./rate-limit.js";

/**
 * The gate every command passes before it is accepted (DESIGN §Edge), shared by HTTP and
 * Socket.IO so a client cannot dodge a limit by switching transport. Order matters: the breaker
 * first (answering fast is its purpose), then backpressure (a refused command should not consume
 * the user's rate budget), then the rate limit.
 */
export interface Gateway {
  breaker: Breaker;
  /** Admit a chat message for `conversationId`: throws UNAVAILABLE, OVERLOADED or RATE_LIMITED. */
  admitMessage(principal: Principal, conversationId: string): Promise<void>;
  /** The per-user message rate limit alone (for transports that gate the rest themselves). */
  limitMessages(principal: Principal): Promise<void>;
  /** Admit any other command (create, cancel, quota): breaker and backpressure only. */
  admitCommand(aggregateId: string): Promise<void>;
}

export function createGateway(parts: { breaker: Breaker; backpressure: Backpressure; rateLimiter: RateLimiter; partitions: number }): Gateway {
  const { breaker, backpressure, rateLimiter, partitions } = parts;
  return {
    breaker,
    async admitMessage(principal, conversationId) {
      breaker.assertUp("redis");
      await backpressure.check(partitionOf(conversationId, partitions));
      await rateLimiter.consume(principal, "msg");
    },
    limitMessages: (principal) => rateLimiter.consume(principal, "msg"),
    async admitCommand(aggregateId) {
      breaker.assertUp("redis");
      await backpressure.check(partitionOf(aggregateId, partitions));
    },
  };
}
