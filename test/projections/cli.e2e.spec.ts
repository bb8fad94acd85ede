import { spawn } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyBatch } from "../../projections/apply.js";
import { spend } from "../../projections/queries.js";
import { testDatabase, type TestDb } from "../support/postgres.js";
import { SINGLE_URL } from "../support/redis.js";
import { chatWorkload, LogBuilder } from "./fixtures.js";

/** The projection CLI commands as a user runs them: output formats and CONTRACT §1 exit codes. */
const BIN = new URL("../../edge/cli/bin.mjs", import.meta.url).pathname;

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: "error", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("exit", (code) => resolve({ code, out, err }));
  });
}

describe("projection CLI (pg)", () => {
  let t: TestDb;
  let redisUrl = "";
  beforeAll(async () => {
    t = await testDatabase("pg", { migrate: false });
    // An empty logical database of the test Redis: the child process cannot use a key prefix.
    for (let db = 11; db >= 8 && !redisUrl; db--) {
      const c = new Redis(`${SINGLE_URL}/${db}`);
      if ((await c.dbsize()) === 0) redisUrl = `${SINGLE_URL}/${db}`;
      c.disconnect();
    }
  });
  afterAll(() => t?.cleanup());

  it("migrate, spend in json/csv/table, bad arguments exit 2, reconcile exits 1 on a difference", async () => {
    const env = { ...t.env, REDIS_URL: redisUrl, PARTITIONS: "2" };
    const m = await cli(["migrate"], env);
    expect(m.code).toBe(0);
    expect(m.out).toMatch(/applied 001-read-models, 002-sessions-ledgers/);
    expect((await cli(["migrate"], env)).out).toMatch(/up to date/);

    const log = new LogBuilder(2);
    await applyBatch(t.db, log.add(...chatWorkload(8, { conversations: 5, turns: 2, deltas: 3, prefix: "cli" })));
    const expected = await spend(t.db, { tenantId: "acme", from: "2026-11-01", to: "2026-11-30", groupBy: "model" });
    const json = await cli(["spend", "--from", "2026-11-01", "--to", "2026-11-30", "--group-by", "model", "--tenant", "acme", "--format", "json"], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toEqual(expected);
    const csv = await cli(["spend", "--from", "2026-11-01", "--to", "2026-11-30", "--group-by", "user", "--format", "csv"], env);
    expect(csv.out.split("\n")[0]).toBe("tenantId,user,messages,inputTokens,outputTokens,costMicros");
    const table = await cli(["spend", "--from", "2026-11-01", "--to", "2026-11-30", "--group-by", "day", "--tenant", "acme"], env);
    expect(table.out).toMatch(/TOTAL/);

    for (const bad of [
      ["spend", "--from", "2026-13-01", "--to", "2026-11-30", "--group-by", "day"],
      ["spend", "--from", "2026-11-01", "--to", "2026-11-30", "--group-by", "planet"],
      ["spend", "--from", "2026-11-30", "--to", "2026-11-01", "--group-by", "day"],
      ["projections", "rebuild", "nonsense"],
    ]) {
      const r = await cli(bad, env);
      expect(r.code, bad.join(" ")).toBe(2);
      expect(r.err.trim().split("\n")).toHaveLength(1);
    }

    const st = await cli(["projections", "status", "--format", "json"], env);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.out)).toHaveLength(2);

    // The rows above were never appended to this Redis: the log says there is no spend, so they differ.
    const rec = await cli(["reconcile", "--tenant", "acme"], env);
    expect(rec.code).toBe(1);
    expect(rec.err).toMatch(/spend rows differ/);

    const down = await cli(["spend", "--from", "2026-11-01", "--to", "2026-11-30", "--group-by", "day"], { DATABASE_URL: "postgres://postgres@127.0.0.1:1/x" });
    expect(down.code).toBe(3);
  });
});
