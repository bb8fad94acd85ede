import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TributaryError } from "../../core/errors.js";
import { streamKeys } from "../../core/keys.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { EventStore } from "../../core/event-store.js";
import { createAccessChecker, ownerFromFirstEvent } from "../../edge/access.js";
import type { Principal } from "../../edge/auth/principal.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";

const P = 4;
const who = (tenantId: string, userId: string, roles: string[] = []): Principal => ({ tenantId, userId, roles, tier: "registered", projectId: undefined, exp: 0 });

async function create(store: EventStore, tenantId: string, ownerId: string): Promise<string> {
  const id = `c-${randomUUID()}`;
  await store.append(
    { kind: "conversation", id },
    0,
    [{ type: "conversation.created", at: "2026-01-01T00:00:00.000Z", data: { title: "t", model: "m", ownerId, tenantId, projectId: null } }],
    `create-${id}`,
  );
  return id;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    if (e instanceof TributaryError) return e.code;
    throw e;
  }
}

describe.each(REDIS_MODES)("access checker on %s Redis", (mode) => {
  let r: TestRedis;
  let store: EventStore;
  beforeAll(async () => {
    r = await testRedis(mode);
    store = createRedisEventStore(r.client, { partitions: P, idemTtlMs: 60_000 });
  });
  afterAll(async () => {
    await r?.cleanup();
  });

  it("owner, auditor and admin of the tenant see it; everyone else gets NOT_FOUND", async () => {
    const access = createAccessChecker(r.client, P);
    const id = await create(store, "t1", "u1");
    expect(await access.check(id, who("t1", "u1"))).toMatchObject({ tenantId: "t1", ownerId: "u1", title: "t", model: "m", createdAt: "2026-01-01T00:00:00.000Z" });
    expect(await code(access.check(id, who("t1", "u2", ["auditor"])))).toBe("ok");
    expect(await code(access.check(id, who("t1", "u2", ["admin"])))).toBe("ok");
    expect(await code(access.check(id, who("t1", "u2")))).toBe("NOT_FOUND");
    expect(await code(access.check(id, who("t2", "u1")))).toBe("NOT_FOUND");
    expect(await code(access.check(id, who("t2", "u1", ["admin", "auditor"])))).toBe("NOT_FOUND");
    expect(await code(access.check("c-missing", who("t1", "u1")))).toBe("NOT_FOUND");
    expect(await code(access.check("bad id with spaces", who("t1", "u1")))).toBe("NOT_FOUND");
    expect(await code(access.check("x".repeat(500), who("t1", "u1")))).toBe("NOT_FOUND");
  });

  it("caches owners (they never change) but never an unknown id", async () => {
    const access = createAccessChecker(r.client, P, { cacheSize: 2 });
    const id = await create(store, "t1", "u1");
    await access.check(id, who("t1", "u1"));
    await r.client.del(streamKeys({ kind: "conversation", id }, P).stream);
    expect(await code(access.check(id, who("t1", "u1")))).toBe("ok");
    // Evicted after two newer entries: the deleted stream now reads as unknown.
    await access.check(await create(store, "t1", "u1"), who("t1", "u1"));
    await access.check(await create(store, "t1", "u1"), who("t1", "u1"));
    expect(await code(access.check(id, who("t1", "u1")))).toBe("NOT_FOUND");

    const later = `c-${randomUUID()}`;
    expect(await access.owner(later)).toBeUndefined();
    await store.append(
      { kind: "conversation", id: later },
      0,
      [{ type: "conversation.created", at: "2026-01-01T00:00:00.000Z", data: { title: "t", model: "m", ownerId: "u9", tenantId: "t9", projectId: null } }],
      `create-${later}`,
    );
    expect((await access.owner(later))?.ownerId).toBe("u9");
  });

  it("ownerFromFirstEvent reads the owner through any event reader", async () => {
    const id = await create(store, "t5", "u5");
    const owner = ownerFromFirstEvent(store);
    expect(await owner(id)).toMatchObject({ tenantId: "t5", ownerId: "u5", createdAt: "2026-01-01T00:00:00.000Z" });
    expect(await owner("c-none")).toBeUndefined();
  });

  it("asks the fallback when the first entry is gone", async () => {
    const access = createAccessChecker(r.client, P, {
      fallback: async (id) => ({ conversationId: id, tenantId: "ta", ownerId: "ua", projectId: null, title: "archived", model: "m", createdAt: "2020-01-01T00:00:00.000Z" }),
    });
    expect((await access.check("c-archived", who("ta", "ua"))).title).toBe("archived");
    expect(await code(access.check("c-archived", who("tb", "ua")))).toBe("NOT_FOUND");
  });
});
