import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TributaryError } from "../../core/errors.js";
import { keys } from "../../core/keys.js";
import type { Principal } from "../../edge/auth/principal.js";
import { createBackpressure, createBreaker, createRateLimiter } from "../../edge/gateway/index.js";
import { call, startHttpEdge } from "../support/http-edge.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";
import { mintToken, randomIdentity } from "../support/tokens.js";

let r: TestRedis;
beforeAll(async () => {
  r = await testRedis("single");
});
afterAll(async () => {
  await r?.cleanup();
});

function principal(tier: Principal["tier"]): Principal {
  const id = randomIdentity();
  return { userId: id.sub, tenantId: id.tid, projectId: undefined, tier, roles: [], exp: 0 };
}

async function outcome(p: Promise<void>): Promise<"ok" | TributaryError> {
  try {
    await p;
    return "ok";
  } catch (e) {
    if (e instanceof TributaryError) return e;
    throw e;
  }
}

describe("rate limiter (Redis token bucket)", () => {
  it("is atomic under concurrency: exactly the tier's burst is admitted", async () => {
    const limiter = createRateLimiter(r.client);
    for (const [tier, burst] of [["anonymous", 10], ["registered", 60]] as const) {
      const p = principal(tier);
      const results = await Promise.all(Array.from({ length: burst + 15 }, () => outcome(limiter.consume(p))));
      const admitted = results.filter((x) => x === "ok").length;
      expect(admitted).toBe(burst);
      const refused = results.filter((x): x is TributaryError => x !== "ok");
      expect(refused.every((e) => e.code === "RATE_LIMITED" && e.status === 429 && (e.retryAfter ?? 0) >= 1)).toBe(true);
    }
  });

  it("keeps one bucket per user and kind, shared by every limiter instance (edge node)", async () => {
    const a = createRateLimiter(r.client);
    const b = createRateLimiter(r.duplicate());
    const p = principal("anonymous");
    for (let i = 0; i < 5; i++) await a.consume(p);
    for (let i = 0; i < 5; i++) await b.consume(p);
    expect(await outcome(a.consume(p))).toBeInstanceOf(TributaryError);
    // Another user, or another kind of bucket, is unaffected.
    expect(await outcome(a.consume(principal("anonymous")))).toBe("ok");
    expect(await outcome(a.consume(p, "other"))).toBe("ok");
  });

  it("honours configured rates", async () => {
    const limiter = createRateLimiter(r.client, { anonymous: 2, registered: 3, privileged: 4 });
    const p = principal("privileged");
    const results = await Promise.all(Array.from({ length: 6 }, () => outcome(limiter.consume(p))));
    expect(results.filter((x) => x === "ok").length).toBe(4);
  });
});

describe.each(REDIS_MODES)("on %s Redis", (mode) => {
  let c: TestRedis;
  beforeAll(async () => {
    c = await testRedis(mode);
  });
  afterAll(async () => {
    await c?.cleanup();
  });

  it("the token bucket admits exactly the burst under concurrency", async () => {
    const limiter = createRateLimiter(c.client);
    const p = principal("anonymous");
    const results = await Promise.all(Array.from({ length: 25 }, () => outcome(limiter.consume(p))));
    expect(results.filter((x) => x === "ok").length).toBe(10);
  });

  it("the backlog is read from every partition's command stream", async () => {
    const bp = createBackpressure(c.client, { maxBacklog: 1, cacheMs: 0 });
    for (const p of [0, 1, 2, 3]) {
      await c.client.xadd(keys.cmd(p), "*", "c", "1");
      await c.client.xadd(keys.cmd(p), "*", "c", "2");
      expect(await bp.backlog(p)).toBe(2);
      await c.client.xgroup("CREATE", keys.cmd(p), "actors", "0");
      expect(await bp.backlog(p)).toBe(2);
      expect(((await outcome(bp.check(p))) as TributaryError).code).toBe("OVERLOADED");
    }
  });
});

describe("backpressure", () => {
  it("counts the actors group's lag plus pending, else the stream length", async () => {
    const bp = createBackpressure(r.client, { maxBacklog: 3, cacheMs: 0 });
    expect(await bp.backlog(1)).toBe(0);
    const cmd = keys.cmd(1);
    for (let i = 0; i < 5; i++) await r.client.xadd(cmd, "*", "c", String(i));
    expect(await bp.backlog(1)).toBe(5);
    await r.client.xgroup("CREATE", cmd, "actors", "0");
    // Two delivered (pending), three never delivered (lag).
    await r.client.xreadgroup("GROUP", "actors", "w1", "COUNT", 2, "STREAMS", cmd, ">");
    expect(await bp.backlog(1)).toBe(5);
    const err = await outcome(bp.check(1));
    expect(err).toBeInstanceOf(TributaryError);
    expect((err as TributaryError).code).toBe("OVERLOADED");
    expect((err as TributaryError).retryAfter).toBeGreaterThanOrEqual(1);
    // Workers catch up: read and acknowledge everything.
    const got = (await r.client.xreadgroup("GROUP", "actors", "w1", "COUNT", 10, "STREAMS", cmd, ">")) as Array<[string, Array<[string, string[]]>]>;
    const ids = got[0]?.[1].map(([id]) => id) ?? [];
    const pending = (await r.client.xpending(cmd, "actors", "-", "+", 10)) as Array<[string]>;
    await r.client.xack(cmd, "actors", ...ids, ...pending.map(([id]) => id));
    expect(await bp.backlog(1)).toBe(0);
    expect(await outcome(bp.check(1))).toBe("ok");
  });
});

describe("breaker", () => {
  it("opens on a failed probe or a reported failure and closes on the next good probe", async () => {
    let up = false;
    const breaker = createBreaker({ checks: [{ name: "postgres", check: async () => { if (!up) throw new Error("down"); } }] });
    expect(breaker.isUp("postgres")).toBe(true);
    await breaker.probe();
    expect(() => breaker.assertUp("postgres")).toThrowError(/postgres is unavailable/);
    up = true;
    await breaker.probe();
    expect(() => breaker.assertUp("postgres")).not.toThrow();
    breaker.trip("postgres", new Error("query failed"));
    expect(breaker.isUp("postgres")).toBe(false);
    await breaker.probe();
    expect(breaker.isUp("postgres")).toBe(true);
  });

  it("a slow check counts as failed", async () => {
    const breaker = createBreaker({ checks: [{ name: "slow", check: () => new Promise<void>(() => undefined) }], timeoutMs: 20 });
    const snap = await breaker.probe();
    expect(snap.slow).toMatchObject({ up: false, reason: expect.stringMatching(/timed out/) });
  });

  it("answers 503 UNAVAILABLE at once while Redis is unreachable, and /healthz stays 200", async () => {
    // A client pointing at a closed port: its connection is never ready.
    const dead = new Redis({ host: "127.0.0.1", port: 1, lazyConnect: false, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
    dead.on("error", () => undefined);
    const h = await startHttpEdge({ edgeRedis: dead });
    try {
      const token = await mintToken();
      for (const [path, init] of [
        ["/v1/quota", {}],
        ["/v1/conversations", { body: { title: "x" } }],
        ["/v1/conversations/c-1", {}],
        ["/v1/conversations/c-1/messages", { body: { text: "x", clientMessageId: "a" } }],
      ] as const) {
        const res = await call(`${h.url}${path}`, { token, ...init });
        expect(res.status, path).toBe(503);
        expect(res.json.error.code).toBe("UNAVAILABLE");
        expect(res.headers.get("retry-after")).toBe("1");
      }
      expect((await call(`${h.url}/healthz`)).status).toBe(200);
      const ready = await call(`${h.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.json.checks.redis).not.toBe("ok");
    } finally {
      await h.stop();
      dead.disconnect();
    }
  });
});
