import { TributaryError, errorMessage } from "../../core/errors.js";
import type { RedisClient } from "../../core/redis/connection.js";
import type { ReadinessCheck } from "../deps.js";

/**
 * The dependency breaker (DESIGN §Edge, issue 5 item 6). While Redis or Postgres is down, requests
 * that need it are answered 503 UNAVAILABLE at once instead of waiting on a client's offline queue or
 * a connect timeout; a background probe closes the breaker again as soon as the dependency answers.
 *
 * Per dependency: closed (healthy) → open on a failed probe or a reported failure → closed on the
 * next successful probe. There is no half-open trial traffic: the probe *is* the trial, so no user
 * request is spent finding out. For Redis the client's own connection state is consulted too, which
 * opens the breaker the instant the socket drops, before any probe runs.
 */
export type DependencyState = { up: true } | { up: false; reason: string; since: number };

export interface Breaker {
  /** Throws 503 UNAVAILABLE when any of `deps` is down. Synchronous: costs nothing while closed. */
  assertUp(...deps: string[]): void;
  isUp(dep: string): boolean;
  /** A request saw `dep` fail: open now; the probe closes it again. */
  trip(dep: string, error: unknown): void;
  /** Run every check once now (the timer does this every `intervalMs`). */
  probe(): Promise<Record<string, DependencyState>>;
  snapshot(): Record<string, DependencyState>;
  start(): void;
  stop(): void;
}

export interface BreakerOptions {
  checks: ReadinessCheck[];
  /** The shared Redis client, whose `status` is read on every assert. */
  redis?: RedisClient | undefined;
  intervalMs?: number;
  /** A check slower than this counts as failed. */
  timeoutMs?: number;
  /** Retry-After on UNAVAILABLE answers. */
  retryAfterSeconds?: number;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function createBreaker(opts: BreakerOptions): Breaker {
  const intervalMs = opts.intervalMs ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const states = new Map<string, DependencyState>(opts.checks.map((c) => [c.name, { up: true }]));
  let timer: NodeJS.Timeout | undefined;
  let probing: Promise<Record<string, DependencyState>> | undefined;

  function redisDown(): string | undefined {
    const status = opts.redis?.status;
    if (status === undefined || status === "ready") return undefined;
    // "wait" = lazyConnect client never used yet: not a failure.
    if (status === "wait") return undefined;
    return `redis connection is ${status}`;
  }

  function stateOf(dep: string): DependencyState {
    if (dep === "redis") {
      const reason = redisDown();
      if (reason) return { up: false, reason, since: Date.now() };
    }
    return states.get(dep) ?? { up: true };
  }

  function snapshot(): Record<string, DependencyState> {
    const out: Record<string, DependencyState> = {};
    for (const name of states.keys()) out[name] = stateOf(name);
    if (opts.redis && !states.has("redis")) out.redis = stateOf("redis");
    return out;
  }

  async function runChecks(): Promise<Record<string, DependencyState>> {
    await Promise.all(
      opts.checks.map(async (c) => {
        try {
          await withTimeout(c.check(), timeoutMs, `${c.name} check`);
          states.set(c.name, { up: true });
        } catch (e) {
          const prev = states.get(c.name);
          states.set(c.name, { up: false, reason: errorMessage(e), since: prev && !prev.up ? prev.since : Date.now() });
        }
      }),
    );
    return snapshot();
  }

  return {
    assertUp(...deps) {
      for (const dep of deps) {
        const s = stateOf(dep);
        if (!s.up) {
          throw new TributaryError("UNAVAILABLE", `${dep} is unavailable`, {
            retryAfter: opts.retryAfterSeconds ?? 1,
            details: { dependency: dep },
          });
        }
      }
    },
    isUp: (dep) => stateOf(dep).up,
    trip(dep, error) {
      const prev = states.get(dep);
      if (prev && !prev.up) return;
      states.set(dep, { up: false, reason: errorMessage(error), since: Date.now() });
    },
    probe() {
      // Overlapping probes (slow dependency, fast timer) share one run.
      probing ??= runChecks().finally(() => {
        probing = undefined;
      });
      return probing;
    },
    snapshot,
    start() {
      if (timer) return;
      timer = setInterval(() => {
        this.probe().catch(() => undefined);
      }, intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

/**
 * Which dependency an unexpected error says is gone, if any: a request that hits a dead connection
 * answers 503 UNAVAILABLE (not 500) and opens the breaker at once, before the next probe would.
 * Only unambiguous signs count; anything else stays a 500 and is logged.
 */
export function failedDependency(e: unknown): "redis" | "postgres" | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  const name = (e as { name?: unknown }).name;
  const message = errorMessage(e);
  // SQLSTATE class 08 (connection exception) and 57P0x (server shutting down / restarting).
  if (typeof code === "string" && /^(08\d{3}|57P0\d)$/.test(code)) return "postgres";
  if (/Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(message)) return "postgres";
  if (name === "MaxRetriesPerRequestError" || name === "ClusterAllFailedError") return "redis";
  if (/Connection is closed|Reached the max retries per request|All nodes failed|Stream isn't writeable/i.test(message)) return "redis";
  return undefined;
}
