import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/keys.js";
import { moveToDeadLetters } from "../../core/redis/dead-letters.js";
import { encodeCommand } from "../../actors/runtime/command.js";
import { call, startHttpEdge, type HttpEdgeHarness } from "../support/http-edge.js";
import { mintToken } from "../support/tokens.js";

/**
 * The console's admin endpoints and static page on a real edge (uWS, real Redis under a test key
 * prefix): admin only, tenant-scoped dead letters (I9) with redrive, live stats, and the page served
 * with a strict Content-Security-Policy.
 */
let h: HttpEdgeHarness;
const tenant = `t-${Math.random().toString(36).slice(2)}`;
const other = `${tenant}-other`;
const dl: Record<"mine" | "theirs" | "garbled", string> = { mine: "", theirs: "", garbled: "" };

async function deadLetter(p: number, c: Buffer): Promise<string> {
  const redis = h.redis.client;
  const stream = keys.cmd(p);
  await redis.call("XGROUP", "CREATE", stream, "actors", "0", "MKSTREAM").catch(() => undefined);
  const id = (await redis.call("XADD", stream, "*", "c", c)) as string;
  await redis.call("XREADGROUP", "GROUP", "actors", "w1", "COUNT", 10, "STREAMS", stream, ">");
  const moved = await moveToDeadLetters(redis, { partition: p, stream, group: "actors", id, owner: "w1", error: `failed ${id}`, deliveries: 5 });
  return `${p}/${moved}`;
}

const command = (tenantId: string, text: string): Buffer =>
  encodeCommand({
    id: `cmd-${Math.random()}`,
    type: "conversation.postMessage",
    aggregateId: "c-x",
    at: new Date().toISOString(),
    principal: { userId: "u1", tenantId, projectId: null, tier: "registered", roles: [] },
    payload: { text },
  });

beforeAll(async () => {
  h = await startHttpEdge();
  dl.mine = await deadLetter(1, command(tenant, "mine to see"));
  dl.theirs = await deadLetter(2, command(other, "their secret"));
  // Not msgpack at all: nobody's, shown to admins without its bytes.
  dl.garbled = await deadLetter(3, Buffer.from([0xc1, 0xc1, 0xc1]));
});
afterAll(() => h?.stop());

describe("console admin endpoints", () => {
  it("are for admins only: 401 without a token, 403 for a user or an auditor", async () => {
    const user = await mintToken({ sub: "u", tid: tenant });
    const auditor = await mintToken({ sub: "a", tid: tenant, roles: ["auditor"] });
    for (const path of ["/v1/admin/stats", "/v1/admin/dlq", "/v1/admin/projections"]) {
      expect((await call(`${h.url}${path}`)).status, path).toBe(401);
      expect((await call(`${h.url}${path}`, { token: user })).status, path).toBe(403);
      expect((await call(`${h.url}${path}`, { token: auditor })).status, path).toBe(403);
    }
    const redrive = await call(`${h.url}/v1/admin/dlq/${dl.mine}/redrive`, { method: "POST", token: user });
    expect(redrive.status).toBe(403);
  });

  it("stats count this edge's connections and deliveries", async () => {
    const admin = await mintToken({ sub: "root", tid: tenant, roles: ["admin"] });
    const before = await call(`${h.url}/v1/admin/stats`, { token: admin });
    expect(before.status).toBe(200);
    h.deps.metrics.connections.inc({ transport: "sse" }, 2);
    h.deps.metrics.deliveries.inc({ transport: "sse" }, 7);
    const after = await call(`${h.url}/v1/admin/stats`, { token: admin });
    expect(after.json.connections.total).toBe(before.json.connections.total + 2);
    expect(after.json.connections.byTransport.sse).toBe((before.json.connections.byTransport.sse ?? 0) + 2);
    expect(after.json.deliveries.total).toBe(before.json.deliveries.total + 7);
    expect(after.json.deliveries.perSecond).toBeGreaterThanOrEqual(0);
  });

  it("projection lag answers 503 on an edge without projection status", async () => {
    const admin = await mintToken({ sub: "root", tid: tenant, roles: ["admin"] });
    const res = await call(`${h.url}/v1/admin/projections`, { token: admin });
    expect(res.status).toBe(503);
    expect(res.json.error.code).toBe("UNAVAILABLE");
  });

  it("lists the tenant's dead letters with payload, unattributed ones without, never another tenant's (I9)", async () => {
    const admin = await mintToken({ sub: "root", tid: tenant, roles: ["admin"] });
    const res = await call(`${h.url}/v1/admin/dlq`, { token: admin });
    expect(res.status).toBe(200);
    expect(res.json.items.map((d: { id: string }) => d.id)).toEqual([dl.mine, dl.garbled]);
    const [mine, garbled] = res.json.items;
    expect(mine).toMatchObject({ tenant, group: "actors", deliveries: 5 });
    expect(JSON.stringify(mine.fields)).toContain("mine to see");
    expect(garbled).toMatchObject({ tenant: null, fields: {} });
    expect(res.text).not.toContain("their secret");

    const foreignAdmin = await mintToken({ sub: "root", tid: other, roles: ["admin"] });
    const theirs = await call(`${h.url}/v1/admin/dlq`, { token: foreignAdmin });
    expect(theirs.json.items.map((d: { id: string }) => d.id)).toEqual([dl.theirs, dl.garbled]);
    expect(theirs.text).not.toContain("mine to see");

    const bad = await call(`${h.url}/v1/admin/dlq?limit=0`, { token: admin });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe("VALIDATION_FAILED");
  });

  it("redrives its own and unattributed dead letters; another tenant's or a malformed id is 404", async () => {
    const admin = await mintToken({ sub: "root", tid: tenant, roles: ["admin"] });
    const foreign = await call(`${h.url}/v1/admin/dlq/${dl.theirs}/redrive`, { method: "POST", token: admin });
    expect(foreign.status).toBe(404);
    expect(foreign.json.error.code).toBe("NOT_FOUND");
    expect((await call(`${h.url}/v1/admin/dlq/99/1-0/redrive`, { method: "POST", token: admin })).status).toBe(404);
    expect((await call(`${h.url}/v1/admin/dlq/x/y/redrive`, { method: "POST", token: admin })).status).toBe(404);

    const ok = await call(`${h.url}/v1/admin/dlq/${dl.mine}/redrive`, { method: "POST", token: admin });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json).toEqual({ redriven: 1, id: dl.mine });
    // Back on the group's redrive stream and gone from the DLQ: a second redrive finds nothing.
    expect(await h.redis.client.xlen(keys.redrive(1, "actors"))).toBe(1);
    expect((await call(`${h.url}/v1/admin/dlq/${dl.mine}/redrive`, { method: "POST", token: admin })).status).toBe(404);
    expect((await call(`${h.url}/v1/admin/dlq/${dl.garbled}/redrive`, { method: "POST", token: admin })).status).toBe(200);
    const left = await call(`${h.url}/v1/admin/dlq`, { token: admin });
    expect(left.json.items).toEqual([]);
    // The other tenant's entry is untouched.
    const foreignAdmin = await mintToken({ sub: "root", tid: other, roles: ["admin"] });
    expect((await call(`${h.url}/v1/admin/dlq`, { token: foreignAdmin })).json.items.map((d: { id: string }) => d.id)).toEqual([dl.theirs]);
  });

  it("serves the console page, script and style with a strict CSP", async () => {
    const page = await fetch(`${h.url}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(await page.text()).toContain('<script type="module" src="/console/console.js">');
    const js = await fetch(`${h.url}/console/console.js`);
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain("sessionStorage");
    expect((await fetch(`${h.url}/console/console.css`)).status).toBe(200);
    expect((await fetch(`${h.url}/console/nope.js`)).status).toBe(404);
  });
});
