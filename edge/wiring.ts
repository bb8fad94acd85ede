import type { Config } from "../core/config.js";
import type { EventStore } from "../core/event-store.js";
import type { Logger } from "../core/logger.js";
import type { RedisClient } from "../core/redis/connection.js";
import { createAccessChecker, type AccessCheckerOptions } from "./access.js";
import { authenticatorFromConfig } from "./auth/verifier.js";
import type { Authenticator } from "./auth/verifier.js";
import type { OperationsDeps } from "./console/operations.js";
import type { Commands, EdgeDeps, ReadinessCheck, ReadModels } from "./deps.js";
import { createEventReader } from "./events-reader.js";
import { createBackpressure } from "./gateway/backpressure.js";
import { createBreaker } from "./gateway/breaker.js";
import { createGateway } from "./gateway/gateway.js";
import { DEFAULT_MESSAGE_RATES, createRateLimiter, type TierRates } from "./gateway/rate-limit.js";
import { createEdgeMetrics, type EdgeMetrics } from "./metrics.js";

/**
 * Assembling EdgeDeps from the pieces the process owns. Callers give what only they can build
 * (commands, read models, the event store, extra readiness checks); the edge builds the rest.
 */
export interface EdgeWiring {
  config: Config;
  log: Logger;
  redis: RedisClient;
  commands: Commands;
  readModels: ReadModels;
  eventStore: Pick<EventStore, "read">;
  /** Beyond the Redis check that is always there; typically a Postgres check. */
  checks?: ReadinessCheck[];
  auth?: Authenticator;
  metrics?: EdgeMetrics;
  access?: AccessCheckerOptions;
  /** Archive-spanning history and projection lag for the state route and the console. */
  operations?: OperationsDeps;
  gateway?: {
    messageRates?: TierRates;
    /** Command backlog per partition above which commands answer 503 OVERLOADED [10,000]. */
    maxBacklog?: number;
    breakerIntervalMs?: number;
  };
}

export function redisCheck(redis: RedisClient): ReadinessCheck {
  return {
    name: "redis",
    async check() {
      const pong = await redis.ping();
      if (pong !== "PONG") throw new Error(`unexpected PING reply ${pong}`);
    },
  };
}

export function createEdgeDeps(w: EdgeWiring): EdgeDeps {
  const checks = [redisCheck(w.redis), ...(w.checks ?? [])];
  const breaker = createBreaker({ checks, redis: w.redis, intervalMs: w.gateway?.breakerIntervalMs ?? 1000 });
  const gateway = createGateway({
    breaker,
    backpressure: createBackpressure(w.redis, { maxBacklog: w.gateway?.maxBacklog ?? 10_000 }),
    rateLimiter: createRateLimiter(w.redis, w.gateway?.messageRates ?? DEFAULT_MESSAGE_RATES),
    partitions: w.config.PARTITIONS,
  });
  return {
    config: w.config,
    log: w.log,
    redis: w.redis,
    auth: w.auth ?? authenticatorFromConfig(w.config),
    access: createAccessChecker(w.redis, w.config.PARTITIONS, w.access),
    commands: w.commands,
    readModels: w.readModels,
    events: createEventReader(w.eventStore),
    metrics: w.metrics ?? createEdgeMetrics(),
    gateway,
    checks,
    ...(w.operations ? { operations: w.operations } : {}),
  };
}
