import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeEvent } from "../../core/codec.js";
import { keys } from "../../core/keys.js";
import { moveToDeadLetters } from "../../core/redis/dead-letters.js";

/**
 * `tributary dlq …` as a real process against a real Redis. A child process cannot take the tests'
 * key prefix and `purge --all` empties every `{pN}:dlq`, so this file runs on logical database 12 of
 * the single Redis, which no other test uses; the cluster path of the same store is covered by
 * dead-letters.int.spec.ts with a prefixed client.
 */
const BIN = fileURLToPath(new URL("../../edge/cli/bin.mjs", import.meta.url));
const DB_URL = "redis://127.0.0.1:6379/12";
const PARTITIONS = 4;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, "dlq", ...args],
      { env: { ...process.env, REDIS_URL: DB_URL, REDIS_CLUSTER_NODES: "", PARTITIONS: String(PARTITIONS), LOG_LEVEL: "silent" }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

describe("CLI dlq", () => {
  const redis = new Redis(DB_URL);
  const run = randomUUID().slice(0, 6);
  const ids: string[] = [];

  beforeAll(async () => {
    // Three dead letters in partitions 1 and 3: one with a msgpack event, one with garbage bytes.
    for (const [p, e] of [
      [1, encodeEvent({ s: 1, type: "conversation.created", version: 1, at: "2026-11-21T00:00:00.000Z", data: { title: "t" } })],
      [3, Buffer.from([0xc1, 0x00])],
      [3, encodeEvent({ s: 1, type: "x", version: 2, at: "2026-11-21T00:00:00.000Z", data: {} })],
    ] as const) {
      const stream = `${keys.log(p)}:${run}`;
      await redis.call("XGROUP", "CREATE", stream, "projector", "0", "MKSTREAM").catch(() => undefined);
      const id = (await redis.call("XADD", stream, "*", "e", e, "k", `{p${p}}:es:conversation:c-${run}`)) as string;
      await redis.call("XREADGROUP", "GROUP", "projector", "c", "COUNT", 10, "STREAMS", stream, ">");
      const dl = await moveToDeadLetters(redis, { partition: p, stream, group: "projector", id, owner: "c", error: `failed ${id}`, deliveries: 5 });
      ids.push(`${p}/${dl}`);
    }
  });
  afterAll(async () => {
    for (let p = 0; p < PARTITIONS; p++) await redis.del(keys.dlq(p), keys.redrive(p, "projector"), `${keys.log(p)}:${run}`);
    redis.disconnect();
  });

  it("lists, shows, redrives and purges by self-describing id", async () => {
    const list = await cli("list");
    expect(list.code).toBe(0);
    expect(list.stdout.trim().split("\n").map((l) => l.split("\t")[0])).toEqual(ids);
    expect(list.stdout).toContain("deliveries=5");

    const json = await cli("list", "--format", "json", "--partition", "3");
    expect(json.code).toBe(0);
    const rows = json.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: string; group: string });
    expect(rows.map((r) => r.id)).toEqual(ids.slice(1));

    const show = await cli("show", ids[0]!);
    expect(show.code).toBe(0);
    const shown = JSON.parse(show.stdout) as { group: string; deliveries: number; fields: { e: { type: string } } };
    expect(shown).toMatchObject({ group: "projector", deliveries: 5, fields: { e: { type: "conversation.created" } } });
    const garbage = JSON.parse((await cli("show", ids[1]!)).stdout) as { fields: { e: { note: string } } };
    expect(garbage.fields.e.note).toBe("not valid msgpack");

    const redrive = await cli("redrive", ids[0]!);
    expect(redrive).toMatchObject({ code: 0, stdout: "redriven 1 dead letter\n" });
    expect(Number(await redis.xlen(keys.redrive(1, "projector")))).toBe(1);
    expect((await cli("show", ids[0]!)).code).toBe(1);

    expect(await cli("purge", ids[1]!)).toMatchObject({ code: 0, stdout: "purged 1 dead letter\n" });
    expect((await cli("purge", ids[1]!)).code).toBe(1);
    expect(await cli("purge", "--all")).toMatchObject({ code: 0, stdout: "purged 1 dead letter\n" });
    expect((await cli("list")).stdout).toBe("");
  });

  it("rejects bad arguments with exit 2 and a one-line reason", async () => {
    for (const args of [["show", "nope"], ["show", "9/1-0"], ["redrive"], ["purge", "1/1-0", "--all"], ["list", "--limit", "0"], ["list", "--partition", "4"]]) {
      const r = await cli(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  it("exits 3 when Redis is unreachable", async () => {
    const r = await new Promise<Run>((resolve) =>
      execFile(
        process.execPath,
        [BIN, "dlq", "list"],
        { env: { ...process.env, REDIS_URL: "redis://127.0.0.1:1", REDIS_CLUSTER_NODES: "", LOG_LEVEL: "silent" }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
      ),
    );
    expect(r.code).toBe(3);
  });
});
