import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFileBlobStore } from "../../core/blob/file-store.js";
import type { NewEvent } from "../../core/envelope.js";
import type { StreamRef } from "../../core/keys.js";
import { createArchiver } from "../../core/redis/archiver.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { testRedis, type TestRedis } from "../support/redis.js";

/**
 * `tributary audit verify` as a real process over archive + Redis (issue 6 item 3): the JSON audit
 * report (streams, events per kind, first break), progress lines on stderr with --all, and a
 * rewritten archive segment reported as a break naming the segment (exit 1), not a crash.
 */
const BIN = fileURLToPath(new URL("../../edge/cli/bin.mjs", import.meta.url));
const PARTITIONS = 4;

let r: TestRedis;
let dataDir: string;
let env: Record<string, string>;
const refs: StreamRef[] = [];
let segmentKey = "";

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const at = (i: number): string => new Date(Date.UTC(2026, 0, 7, 9, 0, i)).toISOString();
const conversation = (): NewEvent[] => [
  { type: "conversation.created", at: at(0), data: { title: "audit", model: "sim-1", ownerId: "u1", tenantId: "t1", projectId: null } },
  { type: "message.received", at: at(1), data: { messageId: "m1", clientMessageId: "c1", userId: "u1", text: "hi" } },
  { type: "assistant.started", at: at(2), data: { messageId: "r1", replyTo: "m1", model: "sim-1" } },
  { type: "assistant.delta", at: at(3), data: { messageId: "r1", index: 0, text: "yo" } },
  { type: "assistant.completed", at: at(4), data: { messageId: "r1", text: "yo", finishReason: "stop", usage: { inputTokens: 1, outputTokens: 1 }, costMicros: 3 } },
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

beforeAll(async () => {
  r = await testRedis("single");
  dataDir = mkdtempSync(join(tmpdir(), "tributary-audit-"));
  env = { ...r.env, REDIS_CLUSTER_NODES: "", REDIS_KEY_PREFIX: r.prefix, DATA_DIR: dataDir, PARTITIONS: String(PARTITIONS), LOG_LEVEL: "silent" };
  const store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
  for (let i = 0; i < 2; i++) {
    const ref: StreamRef = { kind: "conversation", id: `audit-${i}-${Math.random().toString(36).slice(2)}` };
    const res = await store.append(ref, 0, conversation(), `audit-${ref.id}`);
    refs.push(ref);
    if (i === 0) {
      // Three events of the first conversation live only in the archive (a file blob store).
      const archiver = createArchiver(r.client, createFileBlobStore(join(dataDir, "blobs")), { partitions: PARTITIONS, retentionMs: 0 });
      expect((await archiver.archiveStream(ref, res.offsets[3] as string)).trimmed).toBe(3);
      segmentKey = (await archiver.index.segments(ref))[0]?.key ?? "";
    }
  }
  expect(segmentKey).not.toBe("");
});

afterAll(async () => {
  await r?.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("tributary audit verify: report, progress, archive breaks", () => {
  it("--all --format json reports streams and events per kind over archive + Redis, with progress on stderr", async () => {
    const run = await cli("audit", "verify", "--all", "--format", "json", "--progress");
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ ok: true, scope: "all", streams: 2, events: 10, byKind: { conversation: { streams: 2, events: 10 } }, firstBreak: null });
    expect(run.stderr).toContain("audit: 2 streams, 10 events verified so far");

    const text = await cli("audit", "verify", "--all");
    expect(text.code).toBe(0);
    expect(text.stdout).toBe("audit ok: 2 streams, 10 events verified (versions contiguous, hash chains intact); conversation 2 streams/10 events\n");
    // Without a terminal and without --progress, stderr stays quiet for scripts.
    expect(text.stderr).toBe("");

    const one = await cli("audit", "verify", refs[0]!.id, "--format", "json");
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ ok: true, scope: refs[0]!.id, streams: 1, events: 5 });
  });

  it("a rewritten archive segment is a break naming the segment (exit 1), in text and JSON", async () => {
    // The file blob store keeps a key's bytes at <root>/<key>.
    const segmentFile = join(dataDir, "blobs", ...segmentKey.split("/"));
    expect(files(join(dataDir, "blobs"))).toContain(segmentFile);
    const bytes = readFileSync(segmentFile);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    writeFileSync(segmentFile, bytes);

    const text = await cli("audit", "verify", refs[0]!.id);
    expect(text.code, text.stderr).toBe(1);
    expect(text.stdout).toContain(`archive segment ${segmentKey}`);
    expect(text.stdout).toMatch(/^audit failed: stream \S+, version 1: archive segment/);

    const json = await cli("audit", "verify", "--all", "--format", "json");
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report.ok).toBe(false);
    expect(report.firstBreak).toMatchObject({ kind: "archive-integrity", segment: segmentKey, version: 1, offset: null });
  });
});
