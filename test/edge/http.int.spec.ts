import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/keys.js";
import { partitionOf } from "../../core/partition.js";
import { startHttpEdge, call, type HttpEdgeHarness } from "../support/http-edge.js";
import { mintToken, randomIdentity } from "../support/tokens.js";

let h: HttpEdgeHarness;
beforeAll(async () => {
  h = await startHttpEdge({ gateway: { maxBacklog: 5 } });
});
afterAll(async () => {
  await h?.stop();
});

function expectError(r: { status: number; json: any }, status: number, code: string): void {
  expect(r.status).toBe(status);
  expect(r.json?.error?.code).toBe(code);
  expect(typeof r.json?.error?.message).toBe("string");
  expect(typeof r.json?.requestId).toBe("string");
}

async function newConversation(token: string): Promise<string> {
  const r = await call(`${h.url}/v1/conversations`, { token, body: { title: "hello" } });
  expect(r.status).toBe(201);
  return r.json.id as string;
}

/** Raw node:http request so the test controls how the body is sent. */
function rawPost(
  path: string,
  headers: Record<string, string>,
  write: (req: ReturnType<typeof request>, responded: Promise<void>) => Promise<void>,
): Promise<{ status: number; body: string; sentBeforeAnswer: number }> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let sentBeforeAnswer = -1;
    let answered!: () => void;
    const responded = new Promise<void>((r) => (answered = r));
    const req = request({ host: "127.0.0.1", port: h.port, method: "POST", path, headers }, (res) => {
      sentBeforeAnswer = sent;
      answered();
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, sentBeforeAnswer }));
      res.on("error", reject);
    });
    // The server may close the connection after answering while we still write: not a failure.
    req.on("error", (e) => (sentBeforeAnswer >= 0 ? undefined : reject(e)));
    const origWrite = req.write.bind(req);
    (req as { write: (c: string | Buffer) => boolean }).write = (c) => {
      sent += c.length;
      return origWrite(c);
    };
    write(req, responded).catch(reject);
  });
}

describe("health and metrics", () => {
  it("/healthz answers ok", async () => {
    const r = await call(`${h.url}/healthz`);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: "ok" });
  });

  it("/readyz reports each check and 503 with the failing one", async () => {
    const ok = await call(`${h.url}/readyz`);
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ status: "ready", checks: { redis: "ok", postgres: "ok" } });
    h.postgres.up = false;
    try {
      const bad = await call(`${h.url}/readyz`);
      expect(bad.status).toBe(503);
      expect(bad.json.checks.redis).toBe("ok");
      expect(bad.json.checks.postgres).toMatch(/refused/);
      expect(bad.json.error.code).toBe("UNAVAILABLE");
    } finally {
      h.postgres.up = true;
    }
  });

  it("/metrics is Prometheus text with the edge's series", async () => {
    await call(`${h.url}/healthz`);
    const r = await call(`${h.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/text\/plain/);
    expect(r.text).toMatch(/tributary_edge_http_requests_total\{route="\/healthz",method="GET",status="200"\} \d+/);
    expect(r.text).toContain("tributary_edge_connections");
    expect(r.text).toContain("tributary_edge_command_seconds");
  });

  it("unknown routes answer the contract's 404 body with a request id", async () => {
    const r = await call(`${h.url}/nope`);
    expectError(r, 404, "NOT_FOUND");
    expect(r.headers.get("x-request-id")).toBe(r.json.requestId);
  });

  it("a client-supplied X-Request-Id is echoed", async () => {
    const r = await call(`${h.url}/nope`, { headers: { "x-request-id": "abc-123" } });
    expect(r.json.requestId).toBe("abc-123");
  });
});

describe("authentication", () => {
  it("401 without a token, with an expired token, with a bad signature", async () => {
    expectError(await call(`${h.url}/v1/quota`), 401, "UNAUTHENTICATED");
    const expired = await mintToken({ ttlSeconds: -60 });
    const r = await call(`${h.url}/v1/quota`, { token: expired });
    expectError(r, 401, "UNAUTHENTICATED");
    expect(r.json.error.message).toMatch(/expired/);
    const forged = await mintToken({ secret: "some-other-secret-of-enough-length" });
    expectError(await call(`${h.url}/v1/quota`, { token: forged }), 401, "UNAUTHENTICATED");
    expectError(await call(`${h.url}/v1/quota`, { headers: { authorization: "Bearer not.a.jwt" } }), 401, "UNAUTHENTICATED");
  });

  it("accepts the bearer header and both cookies; the query token only on SSE", async () => {
    const token = await mintToken();
    expect((await call(`${h.url}/v1/quota`, { token })).status).toBe(200);
    expect((await call(`${h.url}/v1/quota`, { headers: { cookie: `__Secure-LATC=${token}` } })).status).toBe(200);
    expect((await call(`${h.url}/v1/quota`, { headers: { cookie: `theme=dark; access_token=${token}` } })).status).toBe(200);
    expectError(await call(`${h.url}/v1/quota?access_token=${token}`), 401, "UNAUTHENTICATED");
  });

  it("header wins over cookie (contract order)", async () => {
    const good = await mintToken();
    const r = await call(`${h.url}/v1/quota`, { token: good, headers: { cookie: "access_token=garbage" } });
    expect(r.status).toBe(200);
  });
});

describe("request bodies", () => {
  it("415 for a non-JSON body", async () => {
    const token = await mintToken();
    const r = await call(`${h.url}/v1/conversations`, { token, body: "title=x", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expectError(r, 415, "UNSUPPORTED_MEDIA_TYPE");
  });

  it("400 BAD_REQUEST for unparseable JSON", async () => {
    const token = await mintToken();
    expectError(await call(`${h.url}/v1/conversations`, { token, body: "{not json" }), 400, "BAD_REQUEST");
  });

  it("400 VALIDATION_FAILED with the zod issues for wrong types and unknown fields", async () => {
    const token = await mintToken();
    const r = await call(`${h.url}/v1/conversations`, { token, body: { title: 5, extra: true } });
    expectError(r, 400, "VALIDATION_FAILED");
    expect(Array.isArray(r.json.error.details)).toBe(true);
    const paths = (r.json.error.details as Array<{ path: unknown[]; code: string }>).map((i) => i.path.join("."));
    expect(paths).toContain("title");
    expect((r.json.error.details as Array<{ code: string }>).some((i) => i.code === "unrecognized_keys")).toBe(true);
  });

  it("413 when Content-Length is over the limit, answered before the body is sent", async () => {
    const token = await mintToken();
    const r = await rawPost(
      "/v1/conversations",
      { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": String(10 * 1024 * 1024) },
      async (req, responded) => {
        req.write("{");
        // Hold the rest back until the answer arrived: the server must answer without the body.
        await responded;
        req.destroy();
      },
    );
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).error.code).toBe("PAYLOAD_TOO_LARGE");
    expect(r.sentBeforeAnswer).toBeLessThan(1024);
  });

  it("413 mid-stream for a chunked body crossing the limit, without waiting for the rest", async () => {
    const token = await mintToken();
    const r = await rawPost(
      "/v1/conversations",
      { authorization: `Bearer ${token}`, "content-type": "application/json", "transfer-encoding": "chunked" },
      async (req, responded) => {
        let answered = false;
        void responded.then(() => (answered = true));
        // Up to 1 MiB in 512-byte chunks, stopping as soon as the answer arrives.
        for (let i = 0; i < 2048 && !answered; i++) {
          req.write("x".repeat(512));
          await new Promise((res) => setImmediate(res));
        }
        req.destroy();
      },
    );
    expect(r.status).toBe(413);
    expect(r.sentBeforeAnswer).toBeLessThan(1024 * 1024);
  });

  it("accepts a chunked body within the limit", async () => {
    const token = await mintToken();
    const r = await rawPost(
      "/v1/conversations",
      { authorization: `Bearer ${token}`, "content-type": "application/json", "transfer-encoding": "chunked" },
      async (req) => {
        req.write('{"title":');
        req.write('"chunked"}');
        req.end();
      },
    );
    expect(r.status).toBe(201);
    expect(JSON.parse(r.body).title).toBe("chunked");
  });

  it("a client that aborts mid-body does not disturb the server", async () => {
    const token = await mintToken();
    await new Promise<void>((resolve) => {
      const req = request({
        host: "127.0.0.1",
        port: h.port,
        method: "POST",
        path: "/v1/conversations",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": "500" },
      });
      req.on("error", () => resolve());
      req.write('{"title":"');
      setImmediate(() => {
        req.destroy();
        resolve();
      });
    });
    expect((await call(`${h.url}/healthz`)).status).toBe(200);
  });
});

describe("conversations and messages", () => {
  it("creates a conversation; the same Idempotency-Key answers the same one", async () => {
    const token = await mintToken();
    const a = await call(`${h.url}/v1/conversations`, { token, body: {}, headers: { "idempotency-key": "k1" } });
    const b = await call(`${h.url}/v1/conversations`, { token, body: {}, headers: { "idempotency-key": "k1" } });
    expect(a.status).toBe(201);
    expect(Object.keys(a.json).sort()).toEqual(["createdAt", "id", "model", "title"]);
    expect(b.json.id).toBe(a.json.id);
    const noBody = await call(`${h.url}/v1/conversations`, { token, method: "POST" });
    expect(noBody.status).toBe(201);
  });

  it("posts a message (201 with the offset), validates text and clientMessageId, maps actor rejections", async () => {
    const token = await mintToken();
    const id = await newConversation(token);
    const url = `${h.url}/v1/conversations/${id}/messages`;
    const r = await call(url, { token, body: { text: "hi", clientMessageId: "c-1" } });
    expect(r.status).toBe(201);
    expect(r.json.offset).toMatch(/^\d+-\d+$/);
    expect(typeof r.json.replyId).toBe("string");
    const again = await call(url, { token, body: { text: "hi", clientMessageId: "c-1" } });
    expect(again.status).toBe(200);
    expectError(await call(url, { token, body: { text: "", clientMessageId: "c-2" } }), 400, "VALIDATION_FAILED");
    expectError(await call(url, { token, body: { text: "x", clientMessageId: "bad id!" } }), 400, "VALIDATION_FAILED");
    expectError(await call(url, { token, body: { text: "x".repeat(32_001), clientMessageId: "c-3" } }), 413, "PAYLOAD_TOO_LARGE");
    expectError(await call(url, { token, body: { text: "reject-me", clientMessageId: "c-4" } }), 409, "CONFLICT");
    const pending = await call(url, { token, body: { text: "pend-me", clientMessageId: "c-5" } });
    expect(pending.status).toBe(202);
    expect(pending.json).toEqual({ commandId: "cmd-c-5", status: "pending" });
  });

  it("reads a conversation, lists conversations, pages events as JSON", async () => {
    const token = await mintToken();
    const id = await newConversation(token);
    for (let i = 0; i < 3; i++) {
      expect((await call(`${h.url}/v1/conversations/${id}/messages`, { token, body: { text: `m${i}`, clientMessageId: `c${i}` } })).status).toBe(201);
    }
    const detail = await call(`${h.url}/v1/conversations/${id}`, { token });
    expect(detail.status).toBe(200);
    expect(detail.json.id).toBe(id);
    const list = await call(`${h.url}/v1/conversations?limit=10`, { token });
    expect(list.status).toBe(200);
    expect(list.json.items.map((c: { id: string }) => c.id)).toEqual([id]);
    expect(list.json.nextCursor).toBeNull();
    expectError(await call(`${h.url}/v1/conversations?limit=0`, { token }), 400, "VALIDATION_FAILED");

    const p1 = await call(`${h.url}/v1/conversations/${id}/events?format=json&limit=2`, { token });
    expect(p1.status).toBe(200);
    expect(p1.json.events.map((e: { version: number }) => e.version)).toEqual([1, 2]);
    expect(p1.json.events[0].type).toBe("conversation.created");
    expect(p1.json.events[0].conversationId).toBe(id);
    expect(p1.json.nextOffset).toBe(p1.json.events[1].offset);
    const p2 = await call(`${h.url}/v1/conversations/${id}/events?format=json&limit=2&from=${p1.json.nextOffset}`, { token });
    expect(p2.json.events.map((e: { version: number }) => e.version)).toEqual([3, 4]);
    expect(p2.json.nextOffset).toBeNull();
    expectError(await call(`${h.url}/v1/conversations/${id}/events?format=json&from=yesterday`, { token }), 400, "VALIDATION_FAILED");
  });

  it("cancel answers 202 {cancelled}", async () => {
    const token = await mintToken();
    const id = await newConversation(token);
    const r = await call(`${h.url}/v1/conversations/${id}/cancel`, { token, method: "POST" });
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ cancelled: false });
  });
});

describe("tenancy (I9)", () => {
  it("a foreign or unknown id answers 404, never 403; auditors see their tenant only", async () => {
    const owner = randomIdentity();
    const ownerToken = await mintToken(owner);
    const id = await newConversation(ownerToken);
    const sameTenantOther = await mintToken({ tid: owner.tid });
    const otherTenant = await mintToken();
    const auditor = await mintToken({ tid: owner.tid, roles: ["auditor"] });
    const foreignAuditor = await mintToken({ roles: ["auditor", "admin"] });
    for (const path of [`/v1/conversations/${id}`, `/v1/conversations/${id}/events?format=json`]) {
      expect((await call(`${h.url}${path}`, { token: ownerToken })).status).toBe(200);
      expect((await call(`${h.url}${path}`, { token: auditor })).status).toBe(200);
      expectError(await call(`${h.url}${path}`, { token: sameTenantOther }), 404, "NOT_FOUND");
      expectError(await call(`${h.url}${path}`, { token: otherTenant }), 404, "NOT_FOUND");
      expectError(await call(`${h.url}${path}`, { token: foreignAuditor }), 404, "NOT_FOUND");
    }
    expectError(await call(`${h.url}/v1/conversations/${id}/messages`, { token: otherTenant, body: { text: "x", clientMessageId: "a" } }), 404, "NOT_FOUND");
    expectError(await call(`${h.url}/v1/conversations/${id}/cancel`, { token: sameTenantOther, method: "POST" }), 404, "NOT_FOUND");
    // An auditor may read but not speak.
    expectError(await call(`${h.url}/v1/conversations/${id}/messages`, { token: auditor, body: { text: "x", clientMessageId: "a" } }), 403, "FORBIDDEN");
    expectError(await call(`${h.url}/v1/conversations/c-does-not-exist`, { token: ownerToken }), 404, "NOT_FOUND");
    expectError(await call(`${h.url}/v1/conversations/${encodeURIComponent("../../etc")}`, { token: ownerToken }), 404, "NOT_FOUND");
  });

  it("list is scoped to the caller, or the whole tenant for auditors", async () => {
    const a = randomIdentity();
    const tokA = await mintToken(a);
    const tokB = await mintToken({ tid: a.tid });
    const ida = await newConversation(tokA);
    const idb = await newConversation(tokB);
    const asA = await call(`${h.url}/v1/conversations`, { token: tokA });
    expect(asA.json.items.map((c: { id: string }) => c.id)).toEqual([ida]);
    const asAuditor = await call(`${h.url}/v1/conversations`, { token: await mintToken({ tid: a.tid, roles: ["auditor"] }) });
    expect(asAuditor.json.items.map((c: { id: string }) => c.id).sort()).toEqual([ida, idb].sort());
  });
});

describe("quota, admin and spend", () => {
  it("GET /v1/quota answers the caller's ledger", async () => {
    const r = await call(`${h.url}/v1/quota`, { token: await mintToken() });
    expect(r.status).toBe(200);
    expect(Object.keys(r.json).sort()).toEqual(["limits", "remaining", "reserved", "resetsAt", "tier", "used"]);
  });

  it("PUT /v1/admin/quotas/:userId is admin only and stays in the admin's tenant", async () => {
    const admin = randomIdentity();
    const adminToken = await mintToken({ ...admin, roles: ["admin"] });
    expectError(await call(`${h.url}/v1/admin/quotas/u1`, { method: "PUT", token: await mintToken({ tid: admin.tid }), body: { dailyTokens: 5 } }), 403, "FORBIDDEN");
    const r = await call(`${h.url}/v1/admin/quotas/u1`, { method: "PUT", token: adminToken, body: { dailyTokens: 5, tier: "privileged" } });
    expect(r.status).toBe(200);
    expect(r.json.limits.dailyTokens).toBe(5);
    const setCall = h.fakes.calls.filter((c) => c.method === "setQuota").at(-1);
    expect(setCall?.input).toMatchObject({ tenantId: admin.tid, userId: "u1", dailyTokens: 5, tier: "privileged" });
    expectError(await call(`${h.url}/v1/admin/quotas/u1`, { method: "PUT", token: adminToken, body: { dailyTokens: -1 } }), 400, "VALIDATION_FAILED");
    expectError(await call(`${h.url}/v1/admin/quotas/u1`, { method: "PUT", token: adminToken, body: { tenantId: "other" } }), 400, "VALIDATION_FAILED");
  });

  it("GET /v1/spend validates dates and is admin only", async () => {
    const admin = randomIdentity();
    const adminToken = await mintToken({ ...admin, roles: ["admin"] });
    expectError(await call(`${h.url}/v1/spend?from=2026-01-01&to=2026-01-31`, { token: await mintToken() }), 403, "FORBIDDEN");
    expectError(await call(`${h.url}/v1/spend?from=2026-01-01`, { token: adminToken }), 400, "VALIDATION_FAILED");
    expectError(await call(`${h.url}/v1/spend?from=2026-02-30&to=2026-03-01`, { token: adminToken }), 400, "VALIDATION_FAILED");
    expectError(await call(`${h.url}/v1/spend?from=2026-03-02&to=2026-03-01`, { token: adminToken }), 400, "VALIDATION_FAILED");
    const r = await call(`${h.url}/v1/spend?from=2026-01-01&to=2026-01-31&groupBy=model`, { token: adminToken });
    expect(r.status).toBe(200);
    expect(r.json.rows[0]).toHaveProperty("model");
    expect(h.fakes.calls.filter((c) => c.method === "spend").at(-1)?.input).toMatchObject({ tenantId: admin.tid, groupBy: "model" });
  });
});

describe("gateway over HTTP", () => {
  it("429 RATE_LIMITED with Retry-After after the anonymous tier's 10 messages", async () => {
    const token = await mintToken({ tier: "anonymous" });
    const id = await newConversation(token);
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 11; i++) {
      last = await call(`${h.url}/v1/conversations/${id}/messages`, { token, body: { text: "x", clientMessageId: `r${i}` } });
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 10).every((s) => s === 201)).toBe(true);
    expectError(last!, 429, "RATE_LIMITED");
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const metrics = await call(`${h.url}/metrics`);
    expect(metrics.text).toMatch(/tributary_edge_gateway_rejections_total\{reason="RATE_LIMITED"\} [1-9]/);
  });

  it("503 OVERLOADED with Retry-After when the partition's command backlog is over the limit", async () => {
    const token = await mintToken();
    const id = await newConversation(token);
    const cmd = keys.cmd(partitionOf(id, h.config.PARTITIONS));
    for (let i = 0; i < 6; i++) await h.redis.client.xadd(cmd, "*", "c", "x");
    // The backlog figure is cached briefly: wait it out by polling (no timing assertion).
    let r = await call(`${h.url}/v1/conversations/${id}/messages`, { token, body: { text: "x", clientMessageId: "o1" } });
    for (let i = 0; i < 50 && r.status !== 503; i++) {
      await new Promise((res) => setTimeout(res, 50));
      r = await call(`${h.url}/v1/conversations/${id}/messages`, { token, body: { text: "x", clientMessageId: `o${i + 2}` } });
    }
    expectError(r, 503, "OVERLOADED");
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await h.redis.client.del(cmd);
  });

  it("503 UNAVAILABLE while Postgres is down, and recovery when it returns", async () => {
    const token = await mintToken();
    h.postgres.up = false;
    try {
      await h.deps.gateway.breaker.probe();
      const r = await call(`${h.url}/v1/conversations`, { token });
      expectError(r, 503, "UNAVAILABLE");
      expect(r.json.error.details).toEqual({ dependency: "postgres" });
      // Redis-only routes keep working.
      expect((await call(`${h.url}/v1/quota`, { token })).status).toBe(200);
    } finally {
      h.postgres.up = true;
    }
    await h.deps.gateway.breaker.probe();
    expect((await call(`${h.url}/v1/conversations`, { token })).status).toBe(200);
  });
});

describe("a dependency failing mid-request", () => {
  it("answers 503 UNAVAILABLE (not 500), opens the breaker at once, and closes on the next good probe", async () => {
    const token = await mintToken();
    h.fakes.readFailure = new Error("Connection terminated unexpectedly");
    try {
      const r = await call(`${h.url}/v1/conversations`, { token });
      expectError(r, 503, "UNAVAILABLE");
      expect(r.json.error.details).toEqual({ dependency: "postgres" });
    } finally {
      h.fakes.readFailure = undefined;
    }
    const before = h.fakes.calls.filter((c) => c.method === "listConversations").length;
    expectError(await call(`${h.url}/v1/conversations`, { token }), 503, "UNAVAILABLE");
    // Answered by the open breaker, without touching the read model.
    expect(h.fakes.calls.filter((c) => c.method === "listConversations").length).toBe(before);
    await h.deps.gateway.breaker.probe();
    expect((await call(`${h.url}/v1/conversations`, { token })).status).toBe(200);
  });
});

describe("sharing the events path with SSE", () => {
  it("format=json is answered here, everything else reaches the SSE route", async () => {
    // The whole edge as `tributary edge` builds it: HTTP routes, SSE and Socket.IO on one app.
    const h2 = await startHttpEdge({ sse: true, socketIo: true });
    try {
      const token = await mintToken();
      const created = await call(`${h2.url}/v1/conversations`, { token, body: {} });
      const id = created.json.id as string;
      const json = await call(`${h2.url}/v1/conversations/${id}/events?format=json`, { token });
      expect(json.status).toBe(200);
      expect(json.json.events).toHaveLength(1);
      const ac = new AbortController();
      const sse = await fetch(`${h2.url}/v1/conversations/${id}/events?from=0`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
      expect(sse.status).toBe(200);
      expect(sse.headers.get("content-type")).toMatch(/text\/event-stream/);
      ac.abort();
      await sse.body?.cancel().catch(() => undefined);
      const eio = await fetch(`${h2.url}/socket.io/?EIO=4&transport=polling`);
      expect(eio.status).toBe(200);
      expect(await eio.text()).toMatch(/^0\{"sid"/);
    } finally {
      await h2.stop();
    }
  });
});
