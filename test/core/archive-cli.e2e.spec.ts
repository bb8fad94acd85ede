import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BlobStore } from "../../core/blob/blob-store.js";
import { createFileBlobStore } from "../../core/blob/file-store.js";
import type { EventStore } from "../../core/event-store.js";
import { keys, streamKeys, type StreamRef } from "../../core/keys.js";
import { createArchivedEventReader } from "../../core/redis/archived-reader.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { testS3Bucket, type TestS3 } from "../support/s3.js";

/**
 * `tributary archive` as a real process. A child process cannot take the tests' key prefix and
 * `archive` works on every stream it finds, so this file uses its own logical database (14) on the
 * single Redis, writes streams with random ids and deletes exactly what it wrote.
 */
const BIN = fileURLToPath(new URL("../../edge/cli/bin.mjs", import.meta.url));
const PARTITIONS = 16;
const DB_URL = "redis://127.0.0.1:6379/14";

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
      {
        env: { ...process.env, REDIS_URL: DB_URL, REDIS_CLUSTER_NODES: "", S3_BUCKET: "", PARTITIONS: String(PARTITIONS), LOG_LEVEL: "silent", ...env },
        timeout: 60_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

describe("CLI archive", () => {
  let redis: Redis;
  let store: EventStore;
  let dataDir: string;
  let s3: TestS3;
  const written: StreamRef[] = [];

  beforeAll(async () => {
    redis = new Redis(DB_URL);
    store = createRedisEventStore(redis, { partitions: PARTITIONS, idemTtlMs: 60_000 });
    dataDir = await mkdtemp(join(tmpdir(), "tributary-archive-cli-"));
    s3 = await testS3Bucket();
  });
  afterAll(async () => {
    for (const ref of written) {
      const sk = streamKeys(ref, PARTITIONS);
      await redis.del(sk.stream, sk.meta, `{p${sk.partition}}:archive:${ref.kind}:${ref.id}`);
      for (const k of await redis.keys(`{p${sk.partition}}:idem:${ref.kind}:${ref.id}:*`)) await redis.del(k);
      const log = keys.log(sk.partition);
      for (const [id, fields] of await redis.xrange(log, "-", "+")) {
        if (fields.includes(sk.stream)) await redis.xdel(log, id);
      }
    }
    redis.disconnect();
    await rm(dataDir, { recursive: true, force: true });
    await s3.cleanup();
  });

  async function conversation(n: number): Promise<StreamRef> {
    const ref: StreamRef = { kind: "conversation", id: `cli-${randomUUID()}` };
    written.push(ref);
    for (let v = 0; v < n; v++) {
      await store.append(ref, v, [{ type: "assistant.delta", at: new Date().toISOString(), data: { messageId: "m", index: v, text: `t${v}` } }], `c${v}`);
    }
    return ref;
  }

  async function expectArchived(ref: StreamRef, blob: BlobStore, n: number): Promise<void> {
    expect(await redis.xlen(streamKeys(ref, PARTITIONS).stream)).toBe(0);
    const events = await createArchivedEventReader(redis, blob, PARTITIONS).read(ref);
    expect(events.map((e) => e.version)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  }

  it("archives to files under DATA_DIR/blobs and trims Redis", async () => {
    const ref = await conversation(7);
    // Nothing is a day old yet.
    const none = await cli({ DATA_DIR: dataDir }, "archive", "--older-than", "1d");
    expect(none.stderr).toBe("");
    expect(none.code).toBe(0);
    expect(await redis.xlen(streamKeys(ref, PARTITIONS).stream)).toBe(7);
    await new Promise((r) => setTimeout(r, 5));
    const run = await cli({ DATA_DIR: dataDir }, "archive", "--older-than", "1ms", "--format", "json");
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { events: number; failures: unknown[] };
    expect(report.events).toBeGreaterThanOrEqual(7);
    expect(report.failures).toEqual([]);
    await expectArchived(ref, createFileBlobStore(join(dataDir, "blobs")), 7);
  });

  it("archives to S3 when S3_BUCKET is set", async () => {
    const ref = await conversation(4);
    await new Promise((r) => setTimeout(r, 5));
    const run = await cli({ DATA_DIR: dataDir, ...s3.env }, "archive", "--older-than", "1ms");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^archived \d+ events in \d+ segments; trimmed \d+ entries from \d+ streams/);
    await expectArchived(ref, s3.store, 4);
  });

  it("recovers a deleted archive index with --recover-index", async () => {
    const ref = await conversation(5);
    await new Promise((r) => setTimeout(r, 5));
    expect((await cli({ DATA_DIR: dataDir }, "archive", "--older-than", "1ms")).code).toBe(0);
    const sk = streamKeys(ref, PARTITIONS);
    await redis.del(`{p${sk.partition}}:archive:${ref.kind}:${ref.id}`);
    const run = await cli({ DATA_DIR: dataDir }, "archive", "--recover-index");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^recovered \d+ segments of \d+ archived streams/);
    await expectArchived(ref, createFileBlobStore(join(dataDir, "blobs")), 5);
  });

  it("exits 2 on a bad duration and 3 when the blob store is unreachable", async () => {
    const bad = await cli({ DATA_DIR: dataDir }, "archive", "--older-than", "soon");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/older-than/);
    const down = await cli({ DATA_DIR: dataDir, ...s3.env, S3_ENDPOINT: "http://127.0.0.1:1" }, "archive");
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/blob store unreachable/);
  });
});
