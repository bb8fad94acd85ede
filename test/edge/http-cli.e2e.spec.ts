import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `tributary edge` and `tributary token` as real processes: the edge on an embedded PGlite under a
 * fresh DATA_DIR and the shared test Redis, a token printed by the CLI with the loopback dev secret,
 * real HTTP requests. Only reads are issued, so no keys are written to the shared Redis.
 */
const BIN = join(process.cwd(), "edge/cli/bin.mjs");
let dataDir: string;
let edge: ChildProcess | undefined;
let base: string;
let stderr = "";

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: "warn", ...env }, encoding: "utf8" });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "trib-edge-e2e-"));
  const migrated = cli(["migrate"]);
  expect(migrated.status, migrated.stderr).toBe(0);
  edge = spawn(process.execPath, [BIN, "edge"], {
    env: { ...process.env, DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "warn", AUTH_JWT_SECRET: "" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  base = await new Promise<string>((resolve, reject) => {
    edge!.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m?.[1]) resolve(m[1]);
    });
    edge!.on("exit", (code) => reject(new Error(`edge exited early with ${code}: ${stderr}`)));
  });
});

afterAll(async () => {
  if (edge && edge.exitCode === null) {
    const exited = new Promise((r) => edge!.once("exit", r));
    edge.kill("SIGTERM");
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe("tributary edge + tributary token", () => {
  it("serves health, readiness and metrics", async () => {
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: "ok" });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { redis: "ok", postgres: "ok" } });
    expect(await (await fetch(`${base}/metrics`)).text()).toContain("tributary_edge_http_requests_total");
  });

  it("accepts a token printed by `tributary token` (shared dev secret) and nothing else", async () => {
    const printed = cli(["token", "--sub", "e2e-user", "--tenant", "e2e-tenant", "--tier", "privileged"]);
    expect(printed.status, printed.stderr).toBe(0);
    const token = printed.stdout.trim();
    const auth = { authorization: `Bearer ${token}` };
    const quota = await fetch(`${base}/v1/quota`, { headers: auth });
    expect(quota.status).toBe(200);
    expect(((await quota.json()) as { tier: string }).tier).toBe("privileged");
    const list = await fetch(`${base}/v1/conversations`, { headers: auth });
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual({ items: [], nextCursor: null });
    const unknown = await fetch(`${base}/v1/conversations/c-unknown`, { headers: auth });
    expect(unknown.status).toBe(404);
    expect((await fetch(`${base}/v1/quota`)).status).toBe(401);
    expect((await fetch(`${base}/v1/quota`, { headers: { authorization: "Bearer x.y.z" } })).status).toBe(401);
  });

  it("refuses to start off loopback without a secret, naming the variable (exit 2)", () => {
    const r = cli(["edge"], { HOST: "0.0.0.0", PORT: "0", AUTH_JWT_SECRET: "" });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n").at(-1)).toMatch(/AUTH_JWT_SECRET/);
  });

  it("refuses the pure-JS uWS fallback with one line", () => {
    const r = cli(["edge"], { UWS_USE_FALLBACK: "1", PORT: "0" });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n").at(-1)).toMatch(/^tributary: uWebSockets\.js native binary did not load/);
  });

  it("token: usage errors exit 2 with one line", () => {
    const r = cli(["token", "--sub", "u"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--tenant is required/);
  });
});
