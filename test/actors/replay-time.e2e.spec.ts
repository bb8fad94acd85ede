import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { testRedis, type TestRedis } from "../support/redis.js";

/** Issue 6: `tributary replay --from/--to` accept instants as well as offsets. */
const BIN = join(import.meta.dirname, "../../edge/cli/bin.mjs");

describe("replay bounded by time", () => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await testRedis("single");
  });
  afterAll(async () => r?.cleanup());

  it("--from TIME starts at the first event at or after it, --to TIME ends at the last at or before it", async () => {
    const store = createRedisEventStore(r.client, { partitions: 4, idemTtlMs: 60_000 });
    const id = `rt-${Math.random().toString(36).slice(2)}`;
    const offsets: string[] = [];
    for (let i = 0; i < 3; i++) {
      const at = new Date().toISOString();
      const res = await store.append({ kind: "conversation", id }, i, [{ type: i === 0 ? "conversation.created" : "message.received", data: i === 0 ? { title: "t", model: "m", ownerId: "u", tenantId: "t", projectId: null } : { messageId: `m${i}`, clientMessageId: `c${i}`, userId: "u", text: `hi ${i}` }, at }], `c${i}`);
      offsets.push(res.offsets[0] as string);
      await new Promise((res2) => setTimeout(res2, 15));
    }
    const msOf = (o: string) => new Date(Number(o.split("-")[0])).toISOString();
    const env = { ...process.env, ...r.env, REDIS_KEY_PREFIX: r.prefix, PARTITIONS: "4", LOG_LEVEL: "error" };
    const replay = (...args: string[]) => {
      const p = spawnSync(process.execPath, [BIN, "replay", id, ...args], { env, encoding: "utf8" });
      expect(p.status, p.stderr).toBe(0);
      return p.stdout.trim().split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { offset: string }).offset);
    };
    expect(replay("--from", msOf(offsets[1] as string))).toEqual(offsets.slice(1));
    expect(replay("--to", msOf(offsets[1] as string))).toEqual(offsets.slice(0, 2));
    expect(replay("--from", msOf(offsets[1] as string), "--to", msOf(offsets[1] as string))).toEqual([offsets[1]]);
    const bad = spawnSync(process.execPath, [BIN, "replay", id, "--from", "yesterday"], { env, encoding: "utf8" });
    expect(bad.status).toBe(2);
  });
});
