/**
 * Actor runtime benchmarks (issue 3 §Benchmark), each next to its baseline in the same run:
 *
 * 1. Commands/s through one worker process: `postMessage` → reservation on the user's ledger →
 *    `message.received` + `assistant.started` appended → decision back on the reply stream, with
 *    K conversations of K users in flight at once. Baseline in the same run: bare single-event
 *    appends of the event store at the same concurrency (the floor under any command), so the ratio
 *    says what the runtime adds. The reply itself is a responder that ends at once (one delta), so
 *    the figure is the command path, not token pacing.
 * 2. Rehydration of an actor with 10,000 events, the way a worker's first load does it (meta probe,
 *    then snapshot + tail or the whole stream): from the whole stream vs. from the latest snapshot
 *    (file blob store) plus the `--tail N` events after it; p50/p99 over repeated loads.
 *
 *   npx tsx bench/actors.ts [--commands 20000] [--concurrency 256] [--events 10000] [--loads 200] [--warmup 5] [--tail 0] [--lifecycle]
 *                           [--workload new|returning] [--messages 5]   (--commands 0 / --loads 0: skip that part)
 *
 * Workloads: `new` (default) — every command is the first message of a new user (a new ledger: reset
 * + configuration + reservation, then message.received + assistant.started). `returning` — users
 * who are already known: `--commands / --messages` users, each with a conversation and a ledger that
 * already took one message (warm-up, not timed), then send `--messages` more each, round robin over
 * the users so a user's previous reply has ended when the next message comes. Replies stream at once
 * in this mode (one delta), so each message's cost is its whole lifecycle: reserve (1 ledger event),
 * message.received + assistant.started, assistant.delta + assistant.completed, the ledger commit.
 * Rehydration reports, besides the total, where each load's time went (meta probe, blob read + JSON
 * parse, tail read from Redis, decode + fold, and garbage collection that overlapped the load).
 *
 * Loopback only (BENCH_REDIS_URL, default redis://127.0.0.1:6379); keys under a random prefix,
 * deleted at the end; bounded by the counts above.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
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
  metaSnapshotPointer,
  metaStreamProbe,
  noSnapshots,
} from "../actors/runtime/index.js";
import { flag, hasFlag, numberFlag } from "./lib/args.js";

const COMMANDS = numberFlag("--commands", 20_000);
const CONCURRENCY = numberFlag("--concurrency", 256);
const EVENTS = numberFlag("--events", 10_000);
const LOADS = numberFlag("--loads", 200);
/** Untimed loads before each timed series: a worker process is warm (JIT, first snapshot decode). */
const WARMUP = numberFlag("--warmup", 5);
/** Events after the snapshot in the rehydration bench (0: the snapshot is the stream's head). */
const TAIL = numberFlag("--tail", 0);
const WORKLOAD: string = flag("--workload") ?? "new";
if (WORKLOAD !== "new" && WORKLOAD !== "returning") {
  console.error("bench: --workload new|returning");
  process.exit(2);
}
const RETURNING = WORKLOAD === "returning";
const MESSAGES = numberFlag("--messages", 5);
/**
 * The worker's ACTOR_CACHE_SIZE. Default: room for the run's working set (one conversation and one
 * ledger per user, all of them active), as a worker sized for its load has; `--cache 10000` with
 * more users than that measures the cold path, where every conversation is rehydrated.
 */
const CACHE = numberFlag("--cache", 0);
// Returning users need each reply to end before their next message: replies stream at once.
const LIFECYCLE = hasFlag("--lifecycle") || RETURNING;
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
async function commandsPerSecond(): Promise<{
  workload: string;
  commands: number;
  seconds: number;
  perSec: number;
  workerCpuUsPerCommand: number;
  baselinePerSec: number;
  conflictRetries: number;
  actorCacheSize: number;
}> {
  const store = createRedisEventStore(redis, { partitions: PARTITIONS, idemTtlMs: 600_000 });
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-bench-worker-"));
  const workingSet = RETURNING ? Math.max(1, Math.floor(COMMANDS / MESSAGES)) : COMMANDS;
  const cacheSize = CACHE > 0 ? CACHE : Math.max(10_000, Math.ceil(workingSet * 1.1));
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
      ACTOR_CACHE_SIZE: String(cacheSize),
    },
    // BENCH_WORKER_STDOUT=1 shows the worker's stdout (say, with BENCH_WORKER_NODE_ARGS="--trace-gc").
    stdio: ["ignore", process.env.BENCH_WORKER_STDOUT ? "inherit" : "ignore", "inherit"],
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
    const users = RETURNING ? Math.max(1, Math.floor(COMMANDS / MESSAGES)) : COMMANDS;
    const convs: string[] = [];
    await pool(users, CONCURRENCY, async (i) => {
      convs[i] = (await api.createConversation({ tenantId: "bench", userId: `u${i}`, projectId: undefined })).id;
    });
    let conflictRetries = 0;
    const post = async (u: number, clientMessageId: string): Promise<void> => {
      for (;;) {
        try {
          const res = await api.postMessage({ conversationId: convs[u] as string, tenantId: "bench", userId: `u${u}`, tier: "privileged", text: "hello", clientMessageId, maxTokens: 1 });
          if (res.kind !== "accepted") throw new Error("no decision");
          return;
        } catch (e) {
          // Returning users: the previous reply may not have ended yet (rare with users ≫ in flight).
          if (!RETURNING || (e as { code?: string }).code !== "CONFLICT") throw e;
          conflictRetries++;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    };
    if (RETURNING) {
      // Warm-up (not timed): every user's ledger and conversation exist and have served a message.
      await pool(users, CONCURRENCY, (u) => post(u, "w"));
      await new Promise((r) => setTimeout(r, 1000));
      conflictRetries = 0;
    }
    const total = RETURNING ? users * MESSAGES : COMMANDS;
    const cpu0 = cpuSeconds(child.pid as number);
    const t0 = performance.now();
    // Returning: message k of every user before message k+1 of any, so a user's messages are far apart.
    await pool(total, CONCURRENCY, (j) => (RETURNING ? post(j % users, `m${1 + Math.floor(j / users)}`) : post(j, "m1")));
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
      workload: WORKLOAD,
      commands: total,
      seconds,
      perSec: total / seconds,
      workerCpuUsPerCommand: (workerCpu * 1e6) / total,
      conflictRetries,
      baselinePerSec: COMMANDS / baseSeconds,
      actorCacheSize: cacheSize,
    };
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

type Pcts = { p50: number; p99: number };
type Split = { total: number; probe: number; blob: number; read: number; fold: number; gc: number };
interface Phases {
  total: Pcts;
  /** The meta probe (HMGET of version + snapshot pointer) a worker's first load starts with. */
  probe: Pcts;
  /** Blob read + JSON.parse of the snapshot (the snapshot store's get). */
  blob: Pcts;
  /** Reads of the stream from Redis (the tail after the snapshot, or every page). */
  read: Pcts;
  /**
   * The rest: the load's time outside every wait above (their union — the tail read may overlap the
   * blob read): snapshot validation + decode, event decode + fold, bookkeeping.
   */
  fold: Pcts;
  /** Garbage-collection pauses that overlapped the load (from the gc performance entries). */
  gc: Pcts;
  /** The slowest load, split the same way. */
  worst: Split;
  /** The five slowest loads (JSON output only), to see which part the tail comes from. */
  slowest: Split[];
}

/** A full GC now (V8's `gc`, made available at run time: the bench is run without --expose-gc). */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** Total length of the union of intervals (the waits of one load may overlap). */
function unionLength(iv: Array<[number, number]>): number {
  const sorted = [...iv].sort((a, b) => a[0] - b[0]);
  let sum = 0;
  let end = -Infinity;
  for (const [a, b] of sorted) {
    if (b <= end) continue;
    sum += b - Math.max(a, end);
    end = b;
  }
  return sum;
}

/**
 * Rehydration the way a worker does a first load (actors/runtime/worker.ts): the meta probe first,
 * the snapshot from the file blob store when its pointer is set, then the events after it.
 * `--tail N` appends N events after the snapshot (a worker snapshots every SNAPSHOT_EVERY events,
 * so a real actor has up to that many after it); default 0, the snapshot is the head.
 */
async function rehydration(): Promise<{ events: number; tail: number; full: Phases; snapshot: Phases }> {
  const dir = mkdtempSync(join(tmpdir(), "tributary-bench-"));
  const gcs: Array<{ start: number; end: number }> = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration });
  });
  obs.observe({ entryTypes: ["gc"] });
  try {
    const store = createRedisEventStore(redis, { partitions: PARTITIONS, idemTtlMs: 600_000 });
    const blobs = createFileBlobStore(dir);
    const id = `rehydrate-${randomUUID()}`;
    const ref = { kind: "conversation" as const, id };
    const writer = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store, snapshots: noSnapshots, log });
    const at = new Date().toISOString();
    await writer.execute(id, "c0", at, (s) => conversationDecider.decide({ type: "create", at, ownerId: "u", tenantId: "t", projectId: null }, s));
    await writer.execute(id, "c1", at, (s) =>
      conversationDecider.decide({ type: "postMessage", at, messageId: "m", replyId: "r", clientMessageId: "c", text: "x", userId: "u", maxTokens: 32_000 }, s),
    );
    const delta = (i: number) => writer.execute(id, `d${i}`, at, (s) => conversationDecider.decide({ type: "appendDelta", at, replyId: "r", index: i, text: "tok " }, s));
    const before = Math.max(0, EVENTS - 3 - TAIL);
    for (let i = 0; i < before; i++) await delta(i);
    const atSnap = { ...(await writer.load(id)) }; // a copy: the writer's cached actor moves on
    // Written as a worker writes it: the blob, then the pointer in the stream's meta hash.
    await blobSnapshotStore(blobs, metaSnapshotPointer(redis, PARTITIONS)).put(ref, {
      version: atSnap.version,
      offset: atSnap.offset,
      state: conversationDecider.toSnapshot(atSnap.state),
    });
    for (let i = before; i < EVENTS - 3; i++) await delta(i);
    const loaded = await writer.load(id);
    const time = async (base: ReturnType<typeof blobSnapshotStore>, withSnapshots: boolean): Promise<Phases> => {
      // Time the phases by wrapping the probe, the snapshot store and the store's reads.
      let iv: { probe: Array<[number, number]>; blob: Array<[number, number]>; read: Array<[number, number]> } = { probe: [], blob: [], read: [] };
      const timed = <A extends unknown[], R>(k: keyof typeof iv, f: (...a: A) => Promise<R>) =>
        async (...a: A): Promise<R> => {
          const t = performance.now();
          try {
            return await f(...a);
          } finally {
            iv[k].push([t, performance.now()]);
          }
        };
      const snapshots: ReturnType<typeof blobSnapshotStore> = { exists: (r) => base.exists(r), put: (r, snap) => base.put(r, snap), get: timed("blob", (r) => base.get(r)) };
      const timedStore = { ...store, read: timed("read", store.read) };
      const rawProbe = metaStreamProbe(redis, PARTITIONS, { snapshots: withSnapshots });
      const probe = { probe: timed("probe", rawProbe.probe) };
      const repo = () => new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: timedStore, snapshots, probe, log });
      // Each series starts from a collected heap: the full-stream series leaves ~300 × 10,000 decoded
      // events of garbage, whose major GC would otherwise land in the next series' loads.
      collectGarbage();
      for (let i = 0; i < WARMUP; i++) await repo().rehydrate(id);
      const rows: Array<Split & { start: number; end: number }> = [];
      for (let i = 0; i < LOADS; i++) {
        const r = repo();
        iv = { probe: [], blob: [], read: [] };
        const t = performance.now();
        const l = await r.rehydrate(id);
        const t1 = performance.now();
        if (l.version !== loaded.version) throw new Error("rehydration mismatch");
        const len = (x: Array<[number, number]>) => x.reduce((sum, [a, b]) => sum + b - a, 0);
        const waits = unionLength([...iv.probe, ...iv.blob, ...iv.read]);
        rows.push({ total: t1 - t, probe: len(iv.probe), blob: len(iv.blob), read: len(iv.read), fold: t1 - t - waits, gc: 0, start: t, end: t1 });
      }
      await new Promise((r) => setImmediate(r)); // let the observer deliver this series' gc entries
      for (const r of rows) r.gc = gcs.reduce((sum, g) => sum + Math.max(0, Math.min(r.end, g.end) - Math.max(r.start, g.start)), 0);
      const p = (k: keyof Split): Pcts => {
        const v = rows.map((r) => r[k]).sort((a, b) => a - b);
        return { p50: pct(v, 50), p99: pct(v, 99) };
      };
      const split = (r: (typeof rows)[number]): Split => ({ total: r.total, probe: r.probe, blob: r.blob, read: r.read, fold: r.fold, gc: r.gc });
      const byTotal = [...rows].sort((a, b) => b.total - a.total);
      const worst = split(byTotal[0] as (typeof rows)[number]);
      return { total: p("total"), probe: p("probe"), blob: p("blob"), read: p("read"), fold: p("fold"), gc: p("gc"), worst, slowest: byTotal.slice(0, 5).map(split) };
    };
    const full = await time(noSnapshots as ReturnType<typeof blobSnapshotStore>, false);
    const snapshot = await time(blobSnapshotStore(blobs), true);
    return { events: loaded.version, tail: loaded.version - atSnap.version, full, snapshot };
  } finally {
    obs.disconnect();
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
  // --commands 0: rehydration only.
  const cmd = COMMANDS > 0 ? await commandsPerSecond() : undefined;
  if (cmd) console.log(
    `[${cmd.workload} users] commands/s through one worker process (postMessage → reservation → message.received → decision${LIFECYCLE ? " + the reply's lifecycle" : ""}, ${CONCURRENCY} in flight, ACTOR_CACHE_SIZE ${cmd.actorCacheSize}): ${cmd.perSec.toFixed(0)}; ` +
      `worker CPU ${cmd.workerCpuUsPerCommand.toFixed(0)} µs/command (= ${(1e6 / cmd.workerCpuUsPerCommand).toFixed(0)} commands/s per core); ` +
      `bare appends at the same concurrency: ${cmd.baselinePerSec.toFixed(0)}/s (ratio ${(cmd.perSec / cmd.baselinePerSec).toFixed(2)})` +
      (RETURNING ? `; ${cmd.commands} messages of ${Math.floor(cmd.commands / MESSAGES)} users, ${cmd.conflictRetries} retried (reply still running)` : ""),
  );
  const re = EVENTS > 0 && LOADS > 0 ? await rehydration() : undefined;
  const ms = (x: number) => x.toFixed(2);
  const phases = (ph: Phases) =>
    `p50 ${ms(ph.total.p50)} ms p99 ${ms(ph.total.p99)} ms [p99 of each part: probe ${ms(ph.probe.p99)}, blob ${ms(ph.blob.p99)}, tail read ${ms(ph.read.p99)}, decode+fold ${ms(ph.fold.p99)}, gc overlap ${ms(ph.gc.p99)}; ` +
    `slowest load ${ms(ph.worst.total)}: probe ${ms(ph.worst.probe)}, blob ${ms(ph.worst.blob)}, read ${ms(ph.worst.read)}, fold ${ms(ph.worst.fold)} (gc ${ms(ph.worst.gc)})]`;
  if (re) {
    console.log(`rehydration of ${re.events} events: full stream ${phases(re.full)}`);
    console.log(`rehydration of ${re.events} events: snapshot + tail of ${re.tail} ${phases(re.snapshot)} (${(re.full.total.p50 / re.snapshot.total.p50).toFixed(0)}× faster at p50)`);
  }
  console.log(JSON.stringify({ commands: cmd, rehydration: re }));
} finally {
  await cleanup();
  redis.disconnect();
}
