import { spawnSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { BenchReport } from "../../bench/report/types.js";
import { SINGLE_URL } from "../support/redis.js";

/**
 * `tributary bench` as a user runs it: argument refusal (exit 2, one line) and one tiny bounded run
 * (4 clients, 2 conversations, 2 s) against a server it spawns itself, with the socket.io baseline.
 */
const BIN = join(import.meta.dirname, "../../edge/cli/bin.mjs");
const out = mkdtempSync(join(tmpdir(), "bench-e2e-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("tributary bench", () => {
  it("refuses a non-loopback target with exit 2 and one line", () => {
    const r = spawnSync(process.execPath, [BIN, "bench", "--url", "http://10.1.2.3:8080", "--token", "x".repeat(20)], { encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/--url: .*loopback/);
  });

  it("refuses unbounded work", () => {
    const r = spawnSync(process.execPath, [BIN, "bench", "--spawn", "--duration", "100000"], { encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--duration/);
  });

  it("runs a tiny bounded workload against a spawned server and the baseline, and writes the report", async () => {
    const args = [BIN, "bench", "--spawn", "--clients", "4", "--conversations", "2", "--rate", "2", "--duration", "2", "--workers", "1", "--baseline", "socketio", "--sim-tokens-per-sec", "200", "--sim-max-tokens", "5", "--redis-url", SINGLE_URL, "--out", out];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, stderr).toBe(0);
    expect(stdout).toContain("| tributary |");
    expect(stdout).toContain("| socket.io baseline |");
    const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as BenchReport;
    expect(report.runs.map((r) => r.name)).toEqual(["tributary", "socket.io baseline"]);
    for (const r of report.runs) {
      expect(r.delivered).toBeGreaterThan(0);
      expect(r.appendToClient.p50).not.toBeNull();
      expect(r.sendToFirstDelta?.count ?? 0).toBeGreaterThan(0);
    }
    expect(report.runs[0]?.serverRssBytes).toBeGreaterThan(0);
    expect(Object.keys(report.ratios).length).toBeGreaterThan(0);
    expect(existsSync(join(out, "report.md"))).toBe(true);
    expect(readFileSync(join(out, "report.svg"), "utf8")).toContain("</svg>");
  });
});
