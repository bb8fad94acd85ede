import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase, type TestDb } from "../support/postgres.js";
import { freePort, privateRedis, type PrivateRedis } from "../support/private-services.js";
import { mintToken } from "../support/tokens.js";
import { Role } from "./roles.js";

/**
 * Issue 7 §5: no secret or token in logs. An edge and a worker run at LOG_LEVEL=trace with a JWT
 * secret and an API key in their environment; tokens travel by every carrier the contract accepts
 * (Authorization header, cookies, SSE `access_token` query, Socket.IO handshake), valid, expired,
 * forged and malformed, around requests that succeed and requests that fail. Everything the two
 * processes print is captured and searched for the secret, the key, each token and each token's
 * signature part.
 */
const SECRET = "chaos-log-secret-5f1e0c9a7b3d2e4f";
const API_KEY = "sk-chaos-log-key-0a9b8c7d6e5f";

describe("no secret or token in logs", () => {
  let redis: PrivateRedis;
  let db: TestDb;
  let dataDir: string;
  const roles: Role[] = [];

  beforeAll(async () => {
    redis = await privateRedis();
    db = await testDatabase("pg");
    dataDir = mkdtempSync(join(tmpdir(), "trib-chaos-logs-"));
    const env = {
      REDIS_URL: redis.url,
      DATABASE_URL: db.env.DATABASE_URL as string,
      DATA_DIR: dataDir,
      PARTITIONS: "2",
      AUTH_JWT_SECRET: SECRET,
      OPENAI_API_KEY: API_KEY,
      SIM_TOKENS_PER_SEC: "200",
      SIM_MAX_TOKENS: "4",
      LOG_LEVEL: "trace",
      HOST: "127.0.0.1",
    };
    roles.push(new Role({ name: "edge", kind: "edge", port: await freePort() }, env), new Role({ name: "worker", kind: "worker" }, env));
    for (const r of roles) r.start();
    await roles[0]!.ready();
  });

  afterAll(async () => {
    await Promise.all(roles.map((r) => r.stop()));
    await redis?.cleanup();
    await db?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("tokens by every carrier, valid and not, leave no trace in stdout/stderr", async () => {
    const base = roles[0]!.url;
    const valid = await mintToken({ sub: "u-logs", tid: "t-logs", tier: "privileged", secret: SECRET });
    const expired = await mintToken({ sub: "u-logs", tid: "t-logs", ttlSeconds: -60, secret: SECRET });
    const forged = await mintToken({ sub: "u-logs", tid: "t-logs", secret: "some-other-secret-0123456789" });
    const junk = "not.a.jwt-but-still-a-secret-looking-string";
    const tokens = [valid, expired, forged, junk];

    const created = await fetch(`${base}/v1/conversations`, { method: "POST", headers: { authorization: `Bearer ${valid}`, "content-type": "application/json" }, body: "{}" });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const sent = await fetch(`${base}/v1/conversations/${id}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${valid}`, "content-type": "application/json" },
      body: JSON.stringify({ text: "hello", clientMessageId: "c1" }),
    });
    expect(sent.status).toBe(201);
    for (const t of tokens) {
      await fetch(`${base}/v1/quota`, { headers: { authorization: `Bearer ${t}` } });
      await fetch(`${base}/v1/quota`, { headers: { cookie: `access_token=${t}; __Secure-LATC=${t}` } });
      await fetch(`${base}/v1/conversations`, { method: "POST", headers: { authorization: `Bearer ${t}`, "content-type": "application/json" }, body: "{not json" });
      const sse = await fetch(`${base}/v1/conversations/${id}/events?from=0&access_token=${encodeURIComponent(t)}`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
      await sse?.body?.cancel().catch(() => undefined);
      await new Promise<void>((resolve) => {
        const s = io(base, { auth: { token: t }, transports: ["websocket"], reconnection: false, timeout: 5000 });
        const done = () => {
          s.disconnect();
          resolve();
        };
        s.on("connect", () => s.emit("subscribe", { conversationId: id, from: "0" }, done));
        s.on("connect_error", done);
      });
    }
    // Let the reply finish and every log line be written.
    await new Promise((r) => setTimeout(r, 2000));
    const output = roles.map((r) => r.output).join("\n");
    expect(output.length).toBeGreaterThan(0);
    const needles = [SECRET, API_KEY, ...tokens, ...tokens.map((t) => t.split(".")[2] ?? t).filter((s) => s.length >= 16)];
    for (const n of needles) expect(output.includes(n), `found ${n.slice(0, 12)}… in the logs`).toBe(false);
    console.log(`log-secrets figures ${JSON.stringify({ logBytes: output.length, logLines: output.split("\n").length, needles: needles.length })}`);
  });
});
