import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RecordedEvent } from "../../core/envelope.js";
import { keys } from "../../core/keys.js";
import { partitionOf } from "../../core/partition.js";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { ActorWorker, CommandApi, CommandBus, ReplyListener, allPartitionsOwnership } from "../../actors/runtime/index.js";
import { testRedis, type TestRedis } from "../support/redis.js";

/**
 * Issue 3: two worker processes, one killed with SIGKILL mid-reply. Every reply ends, delta indexes
 * are contiguous without duplicates, versions have no gaps, usage is settled, audit verify passes —
 * and the survivor keeps serving the dead worker's partitions.
 */
const BIN = join(import.meta.dirname, "../../edge/cli/bin.mjs");
const PARTITIONS = 4;
const TERMINAL = ["assistant.completed", "assistant.cancelled", "assistant.failed"];

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("two workers, one killed mid-reply", () => {
  let r: TestRedis;
  let env: Record<string, string>;
  let dataDir: string;
  const workers: ChildProcess[] = [];
  let replies: ReplyListener;
  let api: CommandApi;
  const log = createLogger("silent");

  const spawnWorker = (): ChildProcess => {
    const child = spawn(process.execPath, [BIN, "worker"], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
    child.stderr?.on("data", () => undefined);
    workers.push(child);
    return child;
  };

  beforeAll(async () => {
    r = await testRedis("single");
    dataDir = mkdtempSync(join(tmpdir(), "tributary-kill-"));
    env = {
      ...r.env,
      REDIS_KEY_PREFIX: r.prefix,
      PARTITIONS: String(PARTITIONS),
      SIM_TOKENS_PER_SEC: "25",
      // 8 s per reply: long enough to be mid-reply at the kill even on a loaded machine.
      SIM_MAX_TOKENS: "200",
      DATA_DIR: dataDir,
      LOG_LEVEL: "warn",
      MAX_DELIVERIES: "5",
    };
    replies = new ReplyListener(r.duplicate(), log);
    replies.start();
    // Only for reading ledgers in-process; this worker is never started.
    const reader = new ActorWorker({
      config: { PARTITIONS, MAX_DELIVERIES: 5, SNAPSHOT_EVERY: 100, SIM_MAX_TOKENS: 40 },
      redis: r.client,
      store: createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 }),
      responder: { stream: async function* () {} },
      ownership: allPartitionsOwnership(PARTITIONS),
      log,
    });
    api = new CommandApi(new CommandBus(r.client, PARTITIONS, replies), reader.ledgerPort, 20_000);
  });

  afterAll(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL");
    await replies?.stop();
    await r?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const store = () => createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
  const events = (id: string): Promise<RecordedEvent[]> => store().read({ kind: "conversation", id });

  function checkStream(evs: RecordedEvent[]): void {
    expect(evs.map((e) => e.version)).toEqual(evs.map((_, i) => i + 1));
    const byReply = new Map<string, number[]>();
    for (const e of evs) {
      if (e.type !== "assistant.delta") continue;
      const d = e.data as { messageId: string; index: number };
      byReply.set(d.messageId, [...(byReply.get(d.messageId) ?? []), d.index]);
    }
    for (const idx of byReply.values()) expect(idx).toEqual(idx.map((_, i) => i));
    const started = evs.filter((e) => e.type === "assistant.started").length;
    expect(evs.filter((e) => TERMINAL.includes(e.type))).toHaveLength(started);
  }

  it("ends every reply exactly once, keeps streams gap-free, and the survivor carries on", async () => {
    const a = spawnWorker();
    const b = spawnWorker();
    // Wait until the leases have shared the partitions out: both workers own some.
    await waitFor("both workers to own partitions", async () => {
      const owners = await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => r.client.get(keys.lease(p, "actors"))));
      const pids = new Set(owners.map((o) => /-(\d+)\|/.exec(o ?? "")?.[1]));
      return pids.has(String(a.pid)) && pids.has(String(b.pid)) ? true : undefined;
    });
    const convs: string[] = [];
    const ownerPid = async (id: string): Promise<string | undefined> =>
      /-(\d+)\|/.exec((await r.client.get(keys.lease(partitionOf(id, PARTITIONS), "actors"))) ?? "")?.[1];
    // At least one conversation must be the killed worker's, or the test would prove nothing.
    while (convs.length < 8 || (convs.length < 40 && !(await Promise.all(convs.map(ownerPid))).includes(String(a.pid)))) {
      const c = await api.createConversation({ tenantId: "tk", userId: `u${convs.length % 2}`, projectId: "pk" });
      convs.push(c.id);
    }
    expect((await Promise.all(convs.map(ownerPid))).includes(String(a.pid))).toBe(true);
    for (const [i, id] of convs.entries()) {
      const res = await api.postMessage({ conversationId: id, tenantId: "tk", userId: `u${i % 2}`, tier: "privileged", text: `question ${i}`, clientMessageId: "first" });
      expect(res.kind).toBe("accepted");
    }
    // Mid-reply: every conversation has some deltas (200 pieces at 25/s ≈ 8 s per reply).
    await waitFor("deltas everywhere", async () => {
      const all = await Promise.all(convs.map(events));
      return all.every((evs) => evs.filter((e) => e.type === "assistant.delta").length >= 3) ? true : undefined;
    });
    // The killed worker's replies still running at the kill are the ones that must end as WORKER_LOST.
    const atKill = await Promise.all(convs.map(events));
    const runningOfA = (await Promise.all(convs.map(ownerPid))).filter(
      (pid, i) => pid === String(a.pid) && !(atKill[i] ?? []).some((e) => TERMINAL.includes(e.type)),
    ).length;
    a.kill("SIGKILL");

    const finals = await waitFor("every reply to end", async () => {
      const all = await Promise.all(convs.map(events));
      return all.every((evs) => evs.some((e) => TERMINAL.includes(e.type))) ? all : undefined;
    });
    for (const evs of finals) checkStream(evs);
    // Some replies belonged to the killed worker: they ended as failed, billed for what was generated.
    const failed = finals.flat().filter((e) => e.type === "assistant.failed");
    expect(runningOfA).toBeGreaterThan(0);
    expect(failed.length).toBeGreaterThanOrEqual(runningOfA);
    for (const f of failed) expect((f.data as { code: string }).code).toBe("WORKER_LOST");

    // The survivor now owns every partition and keeps serving them.
    for (const [i, id] of convs.entries()) {
      const res = await api.postMessage({ conversationId: id, tenantId: "tk", userId: `u${i % 2}`, tier: "privileged", text: `again ${i}`, clientMessageId: "second" });
      expect(res.kind).toBe("accepted");
    }
    const after = await waitFor("second replies to end", async () => {
      const all = await Promise.all(convs.map(events));
      return all.every((evs) => evs.filter((e) => TERMINAL.includes(e.type)).length === 2) ? all : undefined;
    });
    for (const evs of after) checkStream(evs);

    // Every reservation was settled: nothing stays reserved on the users' ledgers.
    for (const u of ["u0", "u1"]) {
      const q = await api.getLedger({ tenantId: "tk", userId: u });
      expect(q.reserved.tokens).toBe(0);
      expect(q.used.tokens).toBeGreaterThan(0);
    }

    const audit = spawnSync(process.execPath, [BIN, "audit", "verify", "--all"], { env: { ...process.env, ...env }, encoding: "utf8" });
    expect(audit.status, audit.stderr + audit.stdout).toBe(0);

    // Time travel: after version 3 the first reply had just started.
    const state = spawnSync(process.execPath, [BIN, "state", convs[0] as string, "--at-version", "3"], { env: { ...process.env, ...env }, encoding: "utf8" });
    expect(state.status, state.stderr).toBe(0);
    const folded = JSON.parse(state.stdout) as { version: number; status: string };
    expect(folded.version).toBe(3);
    expect(folded.status).toBe("replying");
  });
});
