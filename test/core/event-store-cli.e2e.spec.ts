import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NewEvent } from "../../core/envelope.js";
import type { EventStore } from "../../core/event-store.js";
import { keys, streamKeys, type StreamRef } from "../../core/keys.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { CLUSTER_NODES, masters, type RedisMode } from "../support/redis.js";

/**
 * `tributary replay` and `tributary audit verify` as real processes against real Redis.
 *
 * A child process cannot take the tests' key prefix, so these tests write real `{pN}:…` keys with
 * random conversation ids and delete exactly what they wrote (streams, meta, dedupe keys, their
 * partition-log entries). The single-Redis run uses logical database 11 so that `audit verify --all`
 * sees only this file's streams; `--all` over the cluster (no databases there) is covered by the
 * integration test with a prefixed client.
 */
const BIN = fileURLToPath(new URL("../../edge/cli/bin.mjs", import.meta.url));
const PARTITIONS = 16;
const SINGLE_DB_URL = "redis://127.0.0.1:6379/11";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, REDIS_URL: "", REDIS_CLUSTER_NODES: "", PARTITIONS: String(PARTITIONS), LOG_LEVEL: "silent", ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const at = (i: number) => new Date(Date.UTC(2026, 10, 21, 12, 0, i)).toISOString();
const conversation = (id: string): NewEvent[] => [
  { type: "conversation.created", data: { title: "Hello", model: "sim-1", ownerId: "u1", tenantId: "t1", projectId: null }, at: at(0) },
  { type: "message.received", data: { messageId: "m1", clientMessageId: "c1", userId: "u1", text: `hi from ${id}` }, at: at(1) },
  { type: "assistant.started", data: { messageId: "r1", replyTo: "m1", model: "sim-1" }, at: at(2) },
  { type: "assistant.delta", data: { messageId: "r1", index: 0, text: "Hel" }, at: at(3) },
  {
    type: "assistant.completed",
    data: { messageId: "r1", text: "Hello\nthere", finishReason: "stop", usage: { inputTokens: 3, outputTokens: 2 }, costMicros: 17 },
    at: at(4),
  },
];

describe.each<RedisMode>(["single", "cluster"])("CLI replay / audit verify (%s)", (mode) => {
  const run = randomUUID().slice(0, 8);
  const env: Record<string, string> = mode === "single" ? { REDIS_URL: SINGLE_DB_URL } : { REDIS_CLUSTER_NODES: CLUSTER_NODES.join(",") };
  let client: RedisClient;
  let store: EventStore;
  const written: StreamRef[] = [];
  const logStart = new Map<number, string>();

  async function create(): Promise<{ ref: StreamRef; offsets: string[] }> {
    const ref: StreamRef = { kind: "conversation", id: `cli-${run}-${written.length}` };
    const p = streamKeys(ref, PARTITIONS).partition;
    if (!logStart.has(p)) {
      const last = await client.xrevrange(keys.log(p), "+", "-", "COUNT", 1);
      logStart.set(p, last[0]?.[0] ?? "0");
    }
    written.push(ref);
    const evs = conversation(ref.id);
    const a = await store.append(ref, 0, evs.slice(0, 2), "cmd-1");
    const b = await store.append(ref, 2, evs.slice(2), "cmd-2");
    return { ref, offsets: [...a.offsets, ...b.offsets] };
  }

  beforeAll(async () => {
    client =
      mode === "single"
        ? new Redis(SINGLE_DB_URL, { maxRetriesPerRequest: 3 })
        : new Cluster(CLUSTER_NODES.map((hp) => ({ host: hp.split(":")[0] ?? "", port: Number(hp.split(":")[1]) })));
    await client.ping();
    store = createRedisEventStore(client, { partitions: PARTITIONS, idemTtlMs: 600_000 });
  });

  afterAll(async () => {
    const mine = new Set(written.map((r) => streamKeys(r, PARTITIONS).stream));
    for (const ref of written) {
      const sk = streamKeys(ref, PARTITIONS);
      await client.del(sk.stream, sk.meta);
    }
    for (const node of masters(client)) {
      let cursor = "0";
      do {
        const [next, found] = await node.scan(cursor, "MATCH", `*:idem:conversation:cli-${run}-*`, "COUNT", 1000);
        cursor = next;
        for (const k of found) await node.del(k);
      } while (cursor !== "0");
    }
    for (const [p, from] of logStart) {
      const entries = await store.readLog(p, { from });
      const ids = entries.filter((e) => mine.has(streamKeys(e.event.stream, PARTITIONS).stream)).map((e) => e.logOffset);
      if (ids.length > 0) await client.xdel(keys.log(p), ...ids);
    }
    client.disconnect();
  });

  it("replay prints the CONTRACT §4 envelopes as NDJSON, in order", async () => {
    const { ref, offsets } = await create();
    const r = await cli(env, "replay", ref.id);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => Object.keys(l).sort())).toEqual(Array(5).fill(["at", "conversationId", "data", "offset", "type", "version"]));
    expect(lines.map((l) => [l.conversationId, l.offset, l.version, l.type])).toEqual(
      conversation(ref.id).map((e, i) => [ref.id, offsets[i], i + 1, e.type]),
    );
    expect(lines[4]?.data).toEqual(conversation(ref.id)[4]?.data);
    expect(lines[0]?.at).toBe(at(0));
  });

  it("replay honours --from (exclusive), --to (inclusive) and --format text", async () => {
    const { ref, offsets } = await create();
    const part = await cli(env, "replay", ref.id, "--from", offsets[1] as string, "--to", offsets[3] as string);
    expect(part.code).toBe(0);
    expect(part.stdout.trimEnd().split("\n").map((l) => (JSON.parse(l) as { version: number }).version)).toEqual([3, 4]);
    const fromZero = await cli(env, "replay", ref.id, "--from", "0");
    expect(fromZero.stdout.trimEnd().split("\n")).toHaveLength(5);
    const past = await cli(env, "replay", ref.id, "--from", offsets[4] as string);
    expect([past.code, past.stdout]).toEqual([0, ""]);
    const text = await cli(env, "replay", ref.id, "--format", "text");
    expect(text.code).toBe(0);
    const tl = text.stdout.trimEnd().split("\n");
    expect(tl).toHaveLength(5);
    expect(tl[1]).toBe(`${offsets[1]} v2 ${at(1)} message.received user u1 [m1]: "hi from ${ref.id}"`);
    expect(tl[4]).toContain('assistant [r1]: "Hello\\nthere" (stop, in=3 out=2, costMicros=17)');
  });

  it("replay and audit validate their arguments (exit 2) and name unknown conversations (exit 1)", async () => {
    const bad = await Promise.all([
      cli(env, "replay", "bad id!"),
      cli(env, "replay", "abc", "--from", "yesterday"),
      cli(env, "replay", "abc", "--format", "xml"),
      cli(env, "audit", "verify"),
      cli(env, "audit", "verify", "abc", "--all"),
    ]);
    for (const r of bad) {
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    const unknown = await cli(env, "replay", `nope-${run}`);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`nope-${run} not found`);
  });

  it("audit verify passes an intact conversation and fails at a flipped byte, naming stream, version and offset", async () => {
    const { ref, offsets } = await create();
    const ok = await cli(env, "audit", "verify", ref.id);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe("audit ok: 1 stream, 5 events verified (versions contiguous, hash chains intact)\n");

    const key = streamKeys(ref, PARTITIONS).stream;
    const raw = await client.xrangeBuffer(key, "-", "+");
    const tx = client.multi().del(key);
    for (const [i, [id, flat]] of raw.entries()) {
      const fields = flat.map((b) => Buffer.from(b));
      const e = fields[1] as Buffer;
      if (i === 2) e[5] = (e[5] as number) ^ 0x01; // one bit of event 3's stored bytes
      tx.xadd(key, id.toString(), ...fields);
    }
    await tx.exec();
    const broken = await cli(env, "audit", "verify", ref.id);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`stream ${key}, version 3, offset ${offsets[2]}:`);
    expect(broken.stderr).toContain("version 3");
  });

  it.runIf(mode === "single")("audit verify --all checks every stream and stops at the first break", async () => {
    // The previous test left one broken stream in this database: repair it by deleting it first.
    const brokenRef = written[written.length - 1] as StreamRef;
    const bk = streamKeys(brokenRef, PARTITIONS);
    await client.del(bk.stream, bk.meta);
    const a = await create();
    await create();
    const ok = await cli(env, "audit", "verify", "--all");
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^audit ok: \d+ streams, \d+ events verified/);
    // Drop the last event but keep the head record: --all must name that stream.
    const key = streamKeys(a.ref, PARTITIONS).stream;
    await client.xdel(key, a.offsets[4] as string);
    const broken = await cli(env, "audit", "verify", "--all");
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`stream ${key}, version 5, offset (missing)`);
  });

  it("exits 3 when Redis is unreachable", async () => {
    const r = await cli(mode === "single" ? { REDIS_URL: "redis://127.0.0.1:1" } : { REDIS_CLUSTER_NODES: "127.0.0.1:1" }, "audit", "verify", "--all");
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/unreachable/);
  });
});
