import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedis, type RedisClient } from "../../core/redis/connection.js";
import { call, startHttpEdge, type HttpEdgeHarness } from "../support/http-edge.js";
import { mintToken } from "../support/tokens.js";

/**
 * A Redis restart under the edge: a private redis-server (our own process on a free port) is
 * stopped and started again. While it is down the edge answers 503 UNAVAILABLE at once (never a
 * hang on the client's offline queue); when it is back the edge recovers by itself.
 */
let port: number;
let dir: string;
let server: ChildProcess | undefined;
let edgeRedis: RedisClient;
let h: HttpEdgeHarness;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function startRedis(): Promise<void> {
  server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once("error", () => resolve(true)); // port taken: the server is up
      probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(false)));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("redis-server did not start");
}

async function stopRedis(): Promise<void> {
  const s = server;
  server = undefined;
  if (!s || s.exitCode !== null) return;
  const exited = new Promise((r) => s.once("exit", r));
  s.kill("SIGKILL");
  await exited;
}

async function until(fn: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("condition never held");
}

beforeAll(async () => {
  port = await freePort();
  dir = mkdtempSync(join(tmpdir(), "trib-redis-"));
  await startRedis();
  // The production client (service mode: keeps reconnecting), as `tributary edge` uses it.
  edgeRedis = createRedis({ REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_CLUSTER_NODES: undefined }, { name: "edge-under-test" });
  edgeRedis.on("error", () => undefined);
  await edgeRedis.ping();
  // The breaker's own probe timer runs here (no test calls probe()): recovery must need no one.
  h = await startHttpEdge({ edgeRedis, gateway: { breakerIntervalMs: 200 } });
});

afterAll(async () => {
  await h?.stop();
  edgeRedis?.disconnect();
  await stopRedis();
  rmSync(dir, { recursive: true, force: true });
});

describe("Redis restart", () => {
  it("503 UNAVAILABLE while Redis is down, recovery without intervention once it is back", async () => {
    const token = await mintToken();
    expect((await call(`${h.url}/v1/quota`, { token })).status).toBe(200);
    expect((await call(`${h.url}/v1/conversations`, { token, body: {} })).status).toBe(201);

    await stopRedis();
    await until(async () => edgeRedis.status !== "ready");
    for (const [path, init] of [
      ["/v1/quota", {}],
      ["/v1/conversations", { body: {} }],
    ] as const) {
      const r = await call(`${h.url}${path}`, { token, ...init });
      expect(r.status, path).toBe(503);
      expect(r.json.error.code).toBe("UNAVAILABLE");
      expect(r.headers.get("retry-after")).toBe("1");
    }
    expect((await call(`${h.url}/healthz`)).status).toBe(200);
    expect((await call(`${h.url}/readyz`)).status).toBe(503);

    await startRedis();
    await until(async () => (await call(`${h.url}/v1/quota`, { token })).status === 200);
    expect((await call(`${h.url}/v1/conversations`, { token, body: {} })).status).toBe(201);
    expect((await call(`${h.url}/readyz`)).status).toBe(200);
  });
});
