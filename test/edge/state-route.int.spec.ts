import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config.js";
import { createFileBlobStore } from "../../core/blob/file-store.js";
import { createLogger } from "../../core/logger.js";
import { createArchivedEventReader } from "../../core/redis/archived-reader.js";
import { createArchiver } from "../../core/redis/archiver.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { NewEvent } from "../../core/envelope.js";
import { ownerFromFirstEvent } from "../../edge/access.js";
import { createEdgeServer, type EdgeServer } from "../../edge/server.js";
import { createEdgeDeps } from "../../edge/wiring.js";
import { FakeBackend, call } from "../support/http-edge.js";
import { testRedis, type TestRedis } from "../support/redis.js";
import { mintToken, testAuthenticator, TEST_JWT_SECRET } from "../support/tokens.js";

/**
 * GET /v1/conversations/:id/state over real Redis and a file blob store: the state folded through
 * the conversation decider at a version or an instant, across the archive boundary (the first events
 * archived and trimmed from Redis); owner, auditor and admin of the tenant may read it, anyone else
 * gets 404 (I9); bad parameters are 400 VALIDATION_FAILED.
 */
const PARTITIONS = 4;
let r: TestRedis;
let server: EdgeServer;
let url: string;
let blobDir: string;
const tenant = `t-${Math.random().toString(36).slice(2)}`;
const conversationId = `c-state-${Math.random().toString(36).slice(2)}`;
const ats: string[] = [];

function events(): NewEvent[] {
  const base = Date.parse("2026-01-05T10:00:00.000Z");
  const at = (i: number): string => new Date(base + i * 1000).toISOString();
  const list: NewEvent[] = [
    { type: "conversation.created", at: at(0), data: { title: "time travel", model: "sim-1", ownerId: "alice", tenantId: tenant, projectId: null } },
    { type: "message.received", at: at(1), data: { messageId: "m1", clientMessageId: "cm1", userId: "alice", text: "hello" } },
    { type: "assistant.started", at: at(2), data: { messageId: "r1", replyTo: "m1", model: "sim-1", clientMessageId: "cm1", userId: "alice", maxTokens: 16, inputTokens: 2 } },
    { type: "assistant.delta", at: at(3), data: { messageId: "r1", index: 0, text: "hi " } },
    { type: "assistant.delta", at: at(4), data: { messageId: "r1", index: 1, text: "there" } },
    {
      type: "assistant.completed",
      at: at(5),
      data: { messageId: "r1", text: "hi there", finishReason: "stop", usage: { inputTokens: 2, outputTokens: 2 }, costMicros: 7 },
    },
  ];
  list.forEach((e) => ats.push(e.at));
  return list;
}

beforeAll(async () => {
  r = await testRedis("single");
  blobDir = mkdtempSync(join(tmpdir(), "tributary-state-"));
  const blob = createFileBlobStore(blobDir);
  const config = loadConfig({ PARTITIONS: String(PARTITIONS), AUTH_JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "silent" });
  const store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
  const ref = { kind: "conversation" as const, id: conversationId };
  const appended = await store.append(ref, 0, events(), `state-${conversationId}`);
  // The first three events move to the archive and leave Redis: the route must read both.
  const archived = await createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0 }).archiveStream(ref, appended.offsets[3] as string);
  expect(archived.trimmed).toBe(3);
  const reader = createArchivedEventReader(r.client, blob, PARTITIONS);
  const fakes = new FakeBackend(store);
  const deps = createEdgeDeps({
    config,
    log: createLogger("silent"),
    redis: r.client,
    commands: fakes,
    readModels: fakes,
    eventStore: reader,
    auth: testAuthenticator(),
    gateway: { breakerIntervalMs: 3_600_000 },
    access: { fallback: ownerFromFirstEvent(reader) },
    operations: { history: reader },
  });
  server = createEdgeServer(deps, { sse: false, socketIo: false });
  url = `http://127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
});

afterAll(async () => {
  await server?.close();
  await r?.cleanup();
  if (blobDir) rmSync(blobDir, { recursive: true, force: true });
});

const stateUrl = (q = ""): string => `${url}/v1/conversations/${conversationId}/state${q}`;

describe("GET /v1/conversations/:id/state", () => {
  it("folds the whole history across archive and Redis by default", async () => {
    // conversation.created is archived: the access check finds the owner through the archive too.
    const token = await mintToken({ sub: "alice", tid: tenant });
    const res = await call(stateUrl(), { token });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ kind: "conversation", id: conversationId, version: 6, status: "idle", at: ats[5] });
    expect(res.json.context.title).toBe("time travel");
  });

  it("answers the state after event N (inside the archived part and in Redis)", async () => {
    const token = await mintToken({ sub: "auditor-1", tid: tenant, roles: ["auditor"] });
    const at3 = await call(stateUrl("?atVersion=3"), { token });
    expect(at3.status, at3.text).toBe(200);
    expect(at3.json).toMatchObject({ version: 3, status: "replying", at: ats[2] });
    const at1 = await call(stateUrl("?atVersion=1"), { token });
    expect(at1.json).toMatchObject({ version: 1, status: "idle" });
    const at0 = await call(stateUrl("?atVersion=0"), { token });
    expect(at0.json).toMatchObject({ version: 0, offset: null, at: null });
  });

  it("answers the state at an instant", async () => {
    const token = await mintToken({ sub: "admin-1", tid: tenant, roles: ["admin"] });
    const res = await call(stateUrl(`?at=${encodeURIComponent("2026-01-05T10:00:04.500Z")}`), { token });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ version: 5, status: "replying", at: ats[4] });
  });

  it("is 404 for another user, another tenant's admin and an unknown id (I9)", async () => {
    const other = await mintToken({ sub: "bob", tid: tenant });
    expect((await call(stateUrl(), { token: other })).status).toBe(404);
    const foreignAdmin = await mintToken({ sub: "alice", tid: `${tenant}-other`, roles: ["admin", "auditor"] });
    const foreign = await call(stateUrl(), { token: foreignAdmin });
    expect(foreign.status).toBe(404);
    expect(foreign.json.error.code).toBe("NOT_FOUND");
    const owner = await mintToken({ sub: "alice", tid: tenant });
    expect((await call(`${url}/v1/conversations/c-nope-${conversationId}/state`, { token: owner })).status).toBe(404);
    expect((await call(stateUrl())).status).toBe(401);
  });

  it("refuses bad parameters with 400 VALIDATION_FAILED", async () => {
    const token = await mintToken({ sub: "alice", tid: tenant });
    for (const q of ["?atVersion=-1", "?atVersion=abc", "?atVersion=1.5", "?at=yesterday", "?atVersion=2&at=2026-01-05T10:00:00Z", "?bogus=1", "?atVersion=99"]) {
      const res = await call(stateUrl(q), { token });
      expect(res.status, q).toBe(400);
      expect(res.json.error.code, q).toBe("VALIDATION_FAILED");
    }
  });
});
