import { spawn, type ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NewEvent } from "../../core/envelope.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { dumpReadModels } from "../../projections/dump.js";
import { redisLogSource } from "../../projections/log-source.js";
import { rebuild } from "../../projections/rebuild.js";
import { projectionStatus } from "../../projections/status.js";
import { testDatabase, type TestDb } from "../support/postgres.js";
import { SINGLE_URL } from "../support/redis.js";
import { chatWorkload, rng, type TestEvent } from "./fixtures.js";

/**
 * I4 exactly-once under SIGKILL: the `tributary projector` process is killed at random points while
 * it consumes 50,000 events, restarted each time; in the end the read models equal a projection from
 * scratch row for row, and `tributary reconcile` exits 0.
 *
 * The child process cannot use a key prefix, so the test takes a Redis logical database that is
 * empty (its own, for the run) and deletes only the keys it wrote.
 */
const PARTITIONS = 4;
const EVENTS = 50_000;
const BIN = new URL("../../edge/cli/bin.mjs", import.meta.url).pathname;

async function emptyRedisDb(): Promise<{ url: string; client: Redis }> {
  for (let db = 15; db >= 12; db--) {
    const client = new Redis(`${SINGLE_URL}/${db}`, { maxRetriesPerRequest: 3 });
    if ((await client.dbsize()) === 0) return { url: `${SINGLE_URL}/${db}`, client };
    client.disconnect();
  }
  throw new Error("no empty Redis logical database in 12..15");
}

function run(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
}

function exitOf(p: ChildProcess): Promise<number | null> {
  return new Promise((res) => (p.exitCode !== null || p.signalCode !== null ? res(p.exitCode) : p.once("exit", (code) => res(code))));
}

describe("projector SIGKILL test (pg)", () => {
  let t: TestDb;
  let redis: { url: string; client: Redis };
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    t = await testDatabase("pg");
    redis = await emptyRedisDb();
  });
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    if (redis) {
      // Only what this test wrote: partition keys and the projector's lease membership.
      for (const pattern of ["{p*", "tributary:members:projector*"]) {
        let cursor = "0";
        do {
          const [next, found] = await redis.client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
          cursor = next;
          for (const k of found) await redis.client.unlink(k);
        } while (cursor !== "0");
      }
      redis.client.disconnect();
    }
    await t?.cleanup();
  });

  it("killed at random points while consuming 50,000 events: rows equal a projection from scratch, reconcile exits 0", async () => {
    const env = { REDIS_URL: redis.url, DATABASE_URL: t.env.DATABASE_URL as string, PARTITIONS: String(PARTITIONS), LOG_LEVEL: "error" };
    const store = createRedisEventStore(redis.client, { partitions: PARTITIONS, idemTtlMs: 600_000 });
    // ~50,000 events: conversations appended concurrently, each one's turns in order, one append per event run of a stream.
    const events = chatWorkload(2024, { conversations: 500, turns: 9, deltas: 16, prefix: "k" }).slice(0, EVENTS);
    const byConv = new Map<string, TestEvent[]>();
    for (const e of events) byConv.set(e.id, [...(byConv.get(e.id) ?? []), e]);
    const appendAll = async (convs: TestEvent[][]) => {
      let cmd = 0;
      await Promise.all(
        convs.map(async (list) => {
          let v = 0;
          for (let i = 0; i < list.length; i += 8) {
            const chunk = list.slice(i, i + 8);
            const first = chunk[0] as TestEvent;
            const news: NewEvent[] = chunk.map((e) => ({ type: e.type, data: e.data, at: e.at }));
            await store.append({ kind: first.kind, id: first.id }, v, news, `${first.id}-${cmd++}`);
            v += chunk.length;
          }
        }),
      );
    };
    const convs = [...byConv.values()];
    // Half before the projector starts, half while it runs and gets killed.
    await appendAll(convs.slice(0, convs.length / 2));

    const r = rng(99);
    const applied = async () => (await projectionStatus(t.db, redis.client, PARTITIONS).catch(() => [])).reduce((a, p) => a + p.applied, 0);
    const late = appendAll(convs.slice(convs.length / 2));
    let kills = 0;
    for (let k = 0; k < 3; k++) {
      child = run(["projector"], env);
      const before = await applied();
      // Wait until it has made progress, then kill it at a random moment.
      for (let i = 0; i < 200 && (await applied()) === before; i++) await new Promise((res) => setTimeout(res, 50));
      await new Promise((res) => setTimeout(res, 100 + Math.floor(r() * 900)));
      child.kill("SIGKILL");
      await exitOf(child);
      kills++;
    }
    await late;
    child = run(["projector"], env);
    let st = await projectionStatus(t.db, redis.client, PARTITIONS);
    for (let i = 0; i < 1200 && !st.every((p) => p.lagEvents === 0 && p.logEntries > 0); i++) {
      await new Promise((res) => setTimeout(res, 100));
      st = await projectionStatus(t.db, redis.client, PARTITIONS);
    }
    child.kill("SIGTERM");
    expect(await exitOf(child)).toBe(0);
    expect(kills).toBe(3);
    expect(st.reduce((a, p) => a + p.applied, 0)).toBe(events.length);

    const scratch = await rebuild(t.db, redisLogSource(redis.client), { partitions: PARTITIONS, keepOld: true, maxBatch: 5000 });
    const live = await dumpReadModels(t.db, scratch.previous);
    const fresh = await dumpReadModels(t.db, scratch.schema);
    expect(live.spend_daily?.length).toBeGreaterThan(0);
    expect(live.messages?.length).toBe(fresh.messages?.length);
    expect(live).toEqual(fresh);

    const rec = run(["reconcile"], env);
    let out = "";
    rec.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    expect(await exitOf(rec)).toBe(0);
    expect(out).toMatch(/reconcile ok/);
  });
});
