/**
 * Actor runtime benchmarks (issue 3 §Benchmark), each next to its baseline in the same run:
 *
 * 1. Commands/s through one worker process: `postMessage` → reservation on the user's ledger →
 *    `message.received` + `assistant.started` appended → decision back on the reply stream, with
 *    K conversations of K users in flight at once. Baseline in the same run: bare single-event
 *    appends of the event store at the same concurrency (the floor under any command), so the ratio
 *    says what the runtime adds. The reply itself is a responder that ends at once (one delta), so
 *    the figure is the command path, not token pacing.
 * 2. Rehydration of an actor with 10,000 events: from the whole stream vs. from the latest
 *    snapshot (file blob store) plus the tail; p50/p99 over repeated loads.
 *
 *   npx tsx bench/actors.ts [--commands 20000] [--concurrency 256] [--events 10000] [--loads 200] [--lifecycle]
 *
 * Loopback only (BENCH_REDIS_URL, default redis://127.0.0.1:6379); keys under a random prefix,
 * deleted at the end; bounded by the counts above.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { createFileBlobStore } from "../core/blob/index.js";
import { createLogger } from "../core/logger.js";
import { createRedisEventStore } from "../core/redis/event-store.js";
import { conversationDecider } from "../actors/conversation/index.js";
import {
  ActorWorker,
  AggregateRepository,
  CommandApi,
  CommandBus,
  ReplyListener,
  allPartitionsOwnership,
  blobSnapshotStore,
  noSnapshots,
} from "../actors/runtime/index.js";

const argv = process.argv.slice(2);
const arg = (n: string, d: number): number => {
  const i = argv.indexOf(n);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const COMMANDS = arg("--commands", 20_000);
const CONCURRENCY = arg("--concurrency", 256);
const EVENTS = arg("--events", 10_000);
const LOADS = arg("--loads", 200);
const LIFECYCLE = argv.includes("--lifecycle");
const url = new URL(process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379");
if (!["127.0.0.1", "localhost", "::1"].includes(url.hostname)) {
  console.error("bench: loopback only");
  process.exit(2);
}
const PARTITIONS = 16;
const prefix = `bench:${randomUUID().slice(0, 8)}:`;
const log = createLogger("silent");
const redis = new Redis(url.toString(), { keyPrefix: prefix, enableAutoPipelining: true });

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function pool<T>(n: number, conc: number, fn: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        await fn(i);
      }
    }),
  );
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (100 Hz)
}

/**
 * The worker runs as its own process (`tributary worker`), as in production, so the driver's CPU
 * (sending commands, awaiting decisions) is not counted against it; its CPU time per command is
 * read from /proc and is the figure that does not depend on how busy the machine is.
 */
async function commandsPerSecond(): Promise<{ commands: number; seconds: number; perSec: number; workerCpuUsPerCommand: number; baselinePerSec: number }> {
  const store = createRedisEventStore(redis, { partitions: PARTITIONS, idemTtlMs: 600_000 });
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-bench-worker-"));
  // BENCH_WORKER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", to profile the worker.
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(import.meta.dirname, "../edge/cli/bin.mjs"), "worker"], {
    env: {
      ...process.env,
      REDIS_URL: url.toString(),
      REDIS_KEY_PREFIX: prefix,
      PARTITIONS: String(PARTITIONS),
      DATA_DIR: dataDir,
      LOG_LEVEL: "error",
      // Default: the command path alone (the reply's first piece is 10 s away, after the window).
      // --lifecycle: the reply streams at once, so its appends and the ledger commit count too.
      SIM_TOKENS_PER_SEC: LIFECYCLE ? "1000000" : "0.1",
      SIM_MAX_TOKENS: "1",
      SNAPSHOT_EVERY: "1000",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    const replyRedis = redis.duplicate();
    const replies = new ReplyListener(replyRedis, log);
    replies.start();
    // Only its ledger port is used (quota reads); this in-process worker is never started.
    const reader = new ActorWorker({
      config: { PARTITIONS, MAX_DELIVERIES: 5, SNAPSHOT_EVERY: 1000, SIM_MAX_TOKENS: 1 },
      redis,
      store,
      responder: { stream: async function* () {} },
      ownership: allPartitionsOwnership(PARTITIONS),
      log,
    });
    const api = new CommandApi(new CommandBus(redis, PARTITIONS, replies), reader.ledgerPort, 60_000);
    // Setup (not timed): one conversation per user, so ledgers and conversations never contend.
    const convs: string[] = [];
    await pool(COMMANDS, CONCURRENCY, async (i) => {
      convs[i] = (await api.createConversation({ tenantId: "bench", userId: `u${i}`, projectId: undefined })).id;
    });
    const cpu0 = cpuSeconds(child.pid as number);
    const t0 = performance.now();
    await pool(COMMANDS, CONCURRENCY, async (i) => {
      const res = await api.postMessage({ conversationId: convs[i] as string, tenantId: "bench", userId: `u${i}`, tier: "privileged", text: "hello", clientMessageId: "m1", maxTokens: 1 });
      if (res.kind !== "accepted") throw new Error("no decision");
    });
    const seconds = (performance.now() - t0) / 1000;
    // With --lifecycle, let the (one-piece) replies finish before reading the CPU: they are part of
    // each message's cost then.
    if (LIFECYCLE) await new Promise((r) => setTimeout(r, 1000));
    const workerCpu = cpuSeconds(child.pid as number) - cpu0;
    await replies.stop();
    replyRedis.disconnect(); // the listener reads on a duplicate of its own; this one would keep the bench alive

    // Baseline, same run: bare single-event appends at the same concurrency.
    const t1 = performance.now();
    await pool(COMMANDS, CONCURRENCY, async (i) => {
      await store.append({ kind: "conversation", id: `raw-${i}` }, 0, [{ type: "x", data: { i }, at: new Date().toISOString() }], `b${i}`);
    });
    const baseSeconds = (performance.now() - t1) / 1000;
    return {
      commands: COMMANDS,
      seconds,
      perSec: COMMANDS / seconds,
      workerCpuUsPerCommand: (workerCpu * 1e6) / COMMANDS,
      baselinePerSec: COMMANDS / baseSeconds,
    };
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function rehydration(): Promise<{ events: number; full: { p50: number; p99: number }; snapshot: { p50: number; p99: number } }> {
  const dir = mkdtempSync(join(tmpdir(), "tributary-bench-"));
  try {
    const store = createRedisEventStore(redis, { partitions: PARTITIONS, idemTtlMs: 600_000 });
    const blobs = createFileBlobStore(dir);
    const id = `rehydrate-${randomUUID()}`;
    const writer = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store, snapshots: noSnapshots, log });
    const at = new Date().toISOString();
    await writer.execute(id, "c0", at, (s) => conversationDecider.decide({ type: "create", at, ownerId: "u", tenantId: "t", projectId: null }, s));
    await writer.execute(id, "c1", at, (s) =>
      conversationDecider.decide({ type: "postMessage", at, messageId: "m", replyId: "r", clientMessageId: "c", text: "x", userId: "u", maxTokens: 32_000 }, s),
    );
    for (let i = 0; i < EVENTS - 3; i++) {
      await writer.execute(id, `d${i}`, at, (s) => conversationDecider.decide({ type: "appendDelta", at, replyId: "r", index: i, text: "tok " }, s));
    }
    const loaded = await writer.load(id);
    await blobSnapshotStore(blobs).put({ kind: "conversation", id }, { version: loaded.version, offset: loaded.offset, state: conversationDecider.toSnapshot(loaded.state) });
    const time = async (snapshots: ReturnType<typeof blobSnapshotStore>): Promise<{ p50: number; p99: number }> => {
      const samples: number[] = [];
      for (let i = 0; i < LOADS; i++) {
        const repo = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store, snapshots, log });
        const t = performance.now();
        const l = await repo.rehydrate(id);
        samples.push(performance.now() - t);
        if (l.version !== loaded.version) throw new Error("rehydration mismatch");
      }
      samples.sort((a, b) => a - b);
      return { p50: pct(samples, 50), p99: pct(samples, 99) };
    };
    const full = await time(noSnapshots);
    const snapshot = await time(blobSnapshotStore(blobs));
    return { events: loaded.version, full, snapshot };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function cleanup(): Promise<void> {
  const raw = new Redis(url.toString());
  let cursor = "0";
  do {
    const [next, found] = await raw.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (found.length) await raw.unlink(...found);
  } while (cursor !== "0");
  raw.disconnect();
}

try {
  const cmd = await commandsPerSecond();
  console.log(
    `commands/s through one worker process (postMessage → reservation → message.received → decision${LIFECYCLE ? " + the reply's lifecycle" : ""}, ${CONCURRENCY} in flight): ${cmd.perSec.toFixed(0)}; ` +
      `worker CPU ${cmd.workerCpuUsPerCommand.toFixed(0)} µs/command (= ${(1e6 / cmd.workerCpuUsPerCommand).toFixed(0)} commands/s per core); ` +
      `bare appends at the same concurrency: ${cmd.baselinePerSec.toFixed(0)}/s (ratio ${(cmd.perSec / cmd.baselinePerSec).toFixed(2)})`,
  );
  const re = await rehydration();
  console.log(
    `rehydration of ${re.events} events: full stream p50 ${re.full.p50.toFixed(2)} ms p99 ${re.full.p99.toFixed(2)} ms; snapshot + tail p50 ${re.snapshot.p50.toFixed(2)} ms p99 ${re.snapshot.p99.toFixed(2)} ms (${(re.full.p50 / re.snapshot.p50).toFixed(0)}× faster)`,
  );
  console.log(JSON.stringify({ commands: cmd, rehydration: re }));
} finally {
  await cleanup();
  redis.disconnect();
}
