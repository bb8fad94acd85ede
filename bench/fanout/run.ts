/**
 * The fan-out comparison of issue 5, servers side by side in one run, each a separate process:
 *
 *   socketio       (A) socket.io + @socket.io/redis-streams-adapter on node:http
 *   socketio-uws   (B) the same attached to uWebSockets.js with attachApp
 *   bare-ws        (C) bare uWS: XREAD the streams, app.publish each entry — the WebSocket ceiling
 *   bare-sse       (D) bare uWS writing SSE frames — the SSE ceiling
 *   tributary-sio  Tributary's Socket.IO fan-out (`tributary edge`)
 *   tributary-sse  Tributary's SSE fan-out (`tributary edge`)
 *
 *   npx tsx bench/fanout/run.ts [--servers a,b,…] [--layouts 1000x100,5000x500] [--rates 10000,40000]
 *       [--seconds 4] [--search] [--search-from 20480] [--search-max 1000000] [--search-steps 9] [--refine 2]
 *       [--warmup 3] [--warmup-rate 10000] [--disturbed 0.3]
 *       [--idle 10000] [--workers 3] [--nice-load 10] [--out bench-results/fanout] [--profile-dir DIR] [--trace DIR]
 *   (`--rates 0` without `--search` skips the loaded runs: `--idle` alone)
 *
 * Events are appended straight to the conversation streams by a separate appender process at a
 * fixed rate (deliveries/s = appends/s × clients per conversation). Clients run in `--workers`
 * processes: a lightweight Socket.IO-over-raw-`ws` client for the Socket.IO servers (the stock
 * client costs several times the CPU per event), plain `ws` for C and a node:http SSE reader for the
 * SSE servers. Server CPU and RSS come from /proc/<server pid>, apart from the clients'.
 *
 * `--nice-load N` (root): the load generator — this orchestrator, the client workers and the
 * appender — runs at nice N and every server at the normal priority (as Redis does), so that on a
 * machine whose cores the load generator shares, the servers are measured with the CPU they would
 * have if the clients ran elsewhere; the same for every server (docs/benchmarks.md).
 *
 * Environment: BENCH_REDIS_URL [redis://127.0.0.1:6379]; everything lives under a random
 * `bench:<hex>:` key prefix that is deleted at the end. Loopback only; every step is bounded.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { Redis } from "ioredis";
import { cpus, loadavg, setPriority } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { signToken } from "../../edge/auth/sign.js";
import { ClientPool } from "../clients/pool.js";
import type { ClientKind, WorkerSpec } from "../clients/protocol.js";
import { measure, quiesce, toRunResult } from "../lib/measure.js";
import { cpuShare, sampleProc, type ProcSample } from "../lib/proc.js";
import { deletePrefix } from "../lib/redis-cleanup.js";
import { newDeploymentEnv, removeDir, spawnServer, type SpawnedServer } from "../lib/spawn.js";
import { toMarkdown } from "../report/markdown.js";
import { renderBars, renderChart } from "../report/svg.js";
import type { BenchReport, RunResult } from "../report/types.js";
import type { FromAppender, ToAppender } from "./appender.js";
import { hasFlag, stringFlag } from "../lib/args.js";

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const ALL = ["socketio", "socketio-uws", "bare-ws", "bare-sse", "tributary-sio", "tributary-sse", "tributary-sio-ab", "tributary-sse-ab"] as const;
/**
 * `tributary-sio-ab` / `tributary-sse-ab`: the same edge from another checkout (BENCH_AB_CHECKOUT, e.g.
 * a `git worktree` of the base commit sharing this node_modules), so a change and its base are
 * measured in one run.
 */
const AB_BIN = process.env.BENCH_AB_CHECKOUT ? join(process.env.BENCH_AB_CHECKOUT, "edge/cli/bin.mjs") : undefined;
type ServerName = (typeof ALL)[number];
const SERVERS = stringFlag("--servers", ALL.join(",")).split(",") as ServerName[];
for (const s of SERVERS) if (!ALL.includes(s)) throw new Error(`unknown server ${s}; one of ${ALL.join(", ")}`);
const LAYOUTS = stringFlag("--layouts", "1000x100")
  .split(",")
  .map((l) => {
    const [c, k] = l.split("x").map(Number);
    if (!c || !k || c > 20_000 || k > c || c % k !== 0) throw new Error(`bad layout ${l}: CLIENTSxCONVERSATIONS, clients a multiple of conversations, ≤ 20000`);
    return { clients: c, conversations: k };
  });
const RATES = stringFlag("--rates", "10000,40000").split(",").map(Number).filter((n) => n > 0);
const SECONDS = Math.min(30, Number(stringFlag("--seconds", "4")));
const SEARCH = hasFlag("--search");
// The defaults climb 20,480 → 879k in 9 steps of ×1.6: on a fast day the bare uWS ceiling (C) lies
// above 600k at 1,000 clients, and the old 5,000 / 300,000 / 6 stopped at 134k, reporting "≥ 134k"
// for every fast server and hiding the ratios the issue asks for.
const SEARCH_FROM = Number(stringFlag("--search-from", "20480"));
const SEARCH_MAX = Math.min(1_000_000, Number(stringFlag("--search-max", "1000000")));
const SEARCH_STEPS = Math.min(10, Number(stringFlag("--search-steps", "9")));
const STEP_FACTOR = 1.6;
/** Other work above this many cores during a failing step voids the attempt (see tryRate), at most MAX_DISTURBED times per rate. */
const DISTURBED = Number(stringFlag("--disturbed", "0.3"));
const MAX_DISTURBED = 1;
/** An unmeasured interval at WARMUP_RATE before the first measured one (see measureLayout); 0 = none. */
const WARMUP_SECONDS = Math.max(0, Math.min(10, Number(stringFlag("--warmup", "3"))));
const WARMUP_RATE = Number(stringFlag("--warmup-rate", "10000"));
/** Bisection steps between the last passing and the first failing rate of the search (see measureLayout). */
const REFINE = Math.max(0, Math.min(4, Number(stringFlag("--refine", "2"))));
const IDLE = Math.min(20_000, Number(stringFlag("--idle", "0")));
const WORKERS = Math.min(8, Number(stringFlag("--workers", "3")));
const OUT = stringFlag("--out", "bench-results/fanout");
const PROFILE_DIR = hasFlag("--profile-dir") ? stringFlag("--profile-dir", "") : "";
const NICE_LOAD = Math.max(0, Math.min(19, Number(stringFlag("--nice-load", "0"))));
if (NICE_LOAD > 0) {
  // Before anything is forked: the clients and the appender inherit it; servers are started un-niced.
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    console.error("bench: --nice-load needs root (servers are started at a lower nice value than the bench)");
    process.exit(2);
  }
  setPriority(process.pid, NICE_LOAD);
}
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
if (!/^redis:\/\/(127\.|localhost)/.test(REDIS_URL)) throw new Error("BENCH_REDIS_URL must be a loopback Redis");
const PARTITIONS = 16;
const TENANT = "bench";
const OWNER = "bench-owner";
const PASS = { arrived: 0.999, p99: 100 };
let REDIS_PID: number | undefined;

const say = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

const KIND: Record<ServerName, { kind: ClientKind; path?: string }> = {
  socketio: { kind: "sio-ws" },
  "socketio-uws": { kind: "sio-ws" },
  "bare-ws": { kind: "ws", path: "/ws?c={id}" },
  "bare-sse": { kind: "sse", path: "/sse?c={id}" },
  "tributary-sio": { kind: "sio-ws" },
  "tributary-sse": { kind: "sse", path: "/v1/conversations/{id}/events?access_token={token}" },
  "tributary-sio-ab": { kind: "sio-ws" },
  "tributary-sse-ab": { kind: "sse", path: "/v1/conversations/{id}/events?access_token={token}" },
};

const deployment = newDeploymentEnv({ REDIS_URL, PARTITIONS: String(PARTITIONS) });
/**
 * --trace DIR: a pipeline trace of every server (trace.mjs: XREAD rounds, GC pauses) and of the
 * clients' slow deliveries, for attribute.ts. The client workers inherit BENCH_TRACE_DIR.
 */
const TRACE_DIR = hasFlag("--trace") ? stringFlag("--trace", "") : "";
if (TRACE_DIR) {
  mkdirSync(TRACE_DIR, { recursive: true });
  process.env.BENCH_TRACE_DIR = TRACE_DIR;
}
/** BENCH_NODE_ARGS: extra Node flags for every server process (diagnostics, e.g. --trace-gc with BENCH_SERVER_LOG). */
const EXTRA_NODE_ARGS = [
  ...(process.env.BENCH_NODE_ARGS ?? "").split(" ").filter((a) => a.length > 0),
  ...(TRACE_DIR ? ["--import", here("./trace.mjs")] : []),
  // SIGUSR2 → three full GCs (the idle-connection samples); inert until signalled.
  "--import",
  here("./gc-on-signal.mjs"),
];

async function startServer(name: ServerName): Promise<{ server: SpawnedServer; cleanup: () => void }> {
  const common = { BENCH_REDIS_URL: REDIS_URL, BENCH_PREFIX: deployment.prefix, BENCH_PARTITIONS: String(PARTITIONS), AUTH_JWT_SECRET: deployment.secret };
  if (name === "socketio" || name === "socketio-uws") {
    const server = await spawnServer({ script: here("../baseline/server.ts"), args: ["--mode", "fanout", ...(name === "socketio-uws" ? ["--uws"] : [])], env: common, nodeArgs: EXTRA_NODE_ARGS, unnice: NICE_LOAD });
    return { server, cleanup: () => undefined };
  }
  if (name === "bare-ws" || name === "bare-sse") {
    const server = await spawnServer({ script: here("./bare-server.ts"), args: ["--transport", name === "bare-ws" ? "ws" : "sse"], env: common, nodeArgs: EXTRA_NODE_ARGS, unnice: NICE_LOAD });
    return { server, cleanup: () => undefined };
  }
  // Tributary's edge alone (no worker/projector competing for CPU), on the shared key prefix.
  const own = newDeploymentEnv();
  removeDir(own.dataDir);
  // BENCH_DATABASE_URL: the edge's read models in a real Postgres, as deployed; without it the edge
  // opens an embedded PGlite in its own process (hundreds of MB of heap next to the fan-out).
  const env = { ...deployment.env, DATA_DIR: own.dataDir, ...(process.env.BENCH_DATABASE_URL ? { DATABASE_URL: process.env.BENCH_DATABASE_URL } : {}) };
  // --profile-dir: a V8 CPU profile of Tributary's edge, written when it stops (where the time goes).
  const nodeArgs = [...EXTRA_NODE_ARGS, ...(PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : [])];
  const ab = name === "tributary-sio-ab" || name === "tributary-sse-ab";
  if (ab && !AB_BIN) throw new Error(`${name} needs BENCH_AB_CHECKOUT (another checkout of the repository)`);
  const server = await spawnServer({ role: "edge", env, nodeArgs, timeoutMs: 120_000, unnice: NICE_LOAD, ...(ab && AB_BIN ? { bin: AB_BIN } : {}) });
  return { server, cleanup: () => removeDir(own.dataDir) };
}

/** Machine-wide CPU from /proc/stat: busy and total jiffies over every core. */
function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const cpu = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.reduce((a, b) => a + b, 0);
    // idle + iowait
    return { busy: total - (cpu[3] ?? 0) - (cpu[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/** The local redis-server's pid (INFO server), to count its CPU among the harness's. */
async function redisPid(): Promise<number | undefined> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    const m = /process_id:(\d+)/.exec(await r.info("server"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}

/**
 * Where the machine's CPU went while the appender ran (one step's load), in cores (1 = one core
 * busy the whole interval): the machine as a whole, the server, the client workers, the appender
 * and Redis. If the machine is near its core count, every server's latency includes waiting for a
 * core — the harness and whatever else runs, not only the server.
 */
interface HarnessCpu {
  machine: number | null;
  cores: number;
  server: number | null;
  clients: number | null;
  appender: number | null;
  redis: number | null;
}
interface CpuSnapshot {
  machine: { busy: number; total: number } | undefined;
  server: ProcSample | undefined;
  clients: ProcSample[];
  appender: ProcSample | undefined;
  redis: ProcSample | undefined;
  at: number;
}
let APPENDER_PID: number | undefined;
function snapshotCpu(serverPid: number, pools: ClientPool[]): CpuSnapshot {
  return {
    machine: machineCpu(),
    server: sampleProc(serverPid),
    clients: pools.flatMap((p) => p.procSamples()),
    appender: APPENDER_PID ? sampleProc(APPENDER_PID) : undefined,
    redis: REDIS_PID ? sampleProc(REDIS_PID) : undefined,
    at: Date.now(),
  };
}
function cpuBetween(a: CpuSnapshot | undefined, b: CpuSnapshot | undefined): HarnessCpu {
  const cores = cpus().length;
  if (!a || !b || b.at <= a.at) return { machine: null, cores, server: null, clients: null, appender: null, redis: null };
  const wallMicros = (b.at - a.at) * 1000;
  const share = (x: ProcSample | undefined, y: ProcSample | undefined): number | null => (x && y ? cpuShare(x, y) : null);
  const clientMicros = b.clients.reduce((s, c) => s + c.cpuMicros, 0) - a.clients.reduce((s, c) => s + c.cpuMicros, 0);
  return {
    machine: a.machine && b.machine && b.machine.total > a.machine.total ? ((b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total)) * cores : null,
    cores,
    server: share(a.server, b.server),
    clients: b.clients.length === a.clients.length && b.clients.length > 0 ? clientMicros / wallMicros : null,
    appender: share(a.appender, b.appender),
    redis: share(a.redis, b.redis),
  };
}

class Appender {
  readonly child: ChildProcess;
  constructor() {
    this.child = fork(here("./appender.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  }
  private ask<T extends FromAppender["t"]>(m: ToAppender, want: T): Promise<Extract<FromAppender, { t: T }>> {
    return new Promise((resolve, reject) => {
      const on = (r: FromAppender): void => {
        if (r.t === "done" && want !== "done") {
          this.child.off("message", on);
          reject(new Error(r.error ?? "appender failed"));
        } else if (r.t === want) {
          this.child.off("message", on);
          resolve(r as Extract<FromAppender, { t: T }>);
        }
      };
      this.child.on("message", on);
      this.child.send(m);
    });
  }
  init(conversationIds: string[]): Promise<unknown> {
    return this.ask({ t: "init", redisUrl: REDIS_URL, prefix: deployment.prefix, partitions: PARTITIONS, conversationIds, ownerId: OWNER, tenantId: TENANT }, "ready");
  }
  run(rate: number, seconds: number, conversations: number): Promise<Extract<FromAppender, { t: "done" }>> {
    return this.ask({ t: "run", rate, seconds, conversations }, "done");
  }
  stop(): void {
    if (this.child.connected) this.child.send({ t: "stop" } satisfies ToAppender);
  }
}

interface SearchStep {
  rate: number;
  /** Deliveries/s actually offered: appended × clients per conversation over the time the appends took. */
  achieved: number;
  arrived: number;
  p99: number | null;
  pass: boolean;
  /** Cores other processes used during the step (machine − server − clients − appender − Redis). */
  others: number;
}
interface LayoutResult {
  server: ServerName;
  layout: string;
  fixed: RunResult[];
  steps: SearchStep[];
  maxSustained: number | null;
  /** The lowest rate that failed (after refinement); undefined when every step passed ("≥ maxSustained"). */
  firstFailed?: number;
}

async function step(
  server: ServerName,
  serverPid: number,
  pools: ClientPool[],
  appender: Appender,
  deliveries: number,
  layout: { clients: number; conversations: number },
  seconds: number,
  progress: boolean,
): Promise<RunResult & { achieved: number; harness: HarnessCpu }> {
  const fan = layout.clients / layout.conversations;
  const appendRate = deliveries / fan;
  if (!(await quiesce(pools))) say(`  ${server}: still delivering a previous backlog after 30 s; measuring anyway`);
  // CPU over the appender's active interval only (the measured interval also holds the drain,
  // which would dilute how busy the machine was while the load was on).
  const cpuAt = (): CpuSnapshot => snapshotCpu(serverPid, pools);
  let cpu0: CpuSnapshot | undefined;
  let cpu1: CpuSnapshot | undefined;
  let appended = 0;
  let appendMs = seconds * 1000;
  const m = await measure({
    pools,
    seconds,
    serverPid,
    drainMs: 1500,
    label: `${server} ${layout.clients}/${layout.conversations} @${deliveries}/s`,
    progress,
    during: async () => {
      cpu0 = cpuAt();
      const r = await appender.run(appendRate, seconds, layout.conversations);
      cpu1 = cpuAt();
      appended = r.appended;
      appendMs = Math.max(appendMs, r.elapsedMs);
    },
  });
  const harness = cpuBetween(cpu0, cpu1);
  const f = (x: number | null): string => (x === null ? "–" : x.toFixed(2));
  if (progress) say(`    cores busy while appending: machine ${f(harness.machine)}/${harness.cores}, server ${f(harness.server)}, clients ${f(harness.clients)}, appender ${f(harness.appender)}, redis ${f(harness.redis)}`);
  const result = toRunResult(m, {
    name: `${server} @${deliveries / 1000}k/s`,
    transport: KIND[server].kind,
    clients: layout.clients,
    conversations: layout.conversations,
    offeredRate: deliveries,
    seconds,
    expected: appended * fan,
    firstDelta: false,
  });
  return { ...result, harness, achieved: Math.round((appended * fan) / (appendMs / 1000)) };
}

async function measureLayout(server: ServerName, appender: Appender, ids: string[], token: string, layout: { clients: number; conversations: number }): Promise<LayoutResult> {
  const { server: proc, cleanup } = await startServer(server);
  const pool = new ClientPool();
  const out: LayoutResult = { server, layout: `${layout.clients}x${layout.conversations}`, fixed: [], steps: [], maxSustained: null };
  try {
    const clients: WorkerSpec["clients"] = Array.from({ length: layout.clients }, (_, i) => ({ conversationId: ids[i % layout.conversations] as string, token, sender: false }));
    const k = KIND[server];
    const r = await pool.start({ kind: k.kind, baseUrl: proc.url, clients, ...(k.path ? { pathTemplate: k.path } : {}) }, WORKERS);
    say(`${server} ${out.layout}: ${r.connected}/${layout.clients} connected${r.errors[0] ? ` (${r.errors[0]})` : ""}`);
    if (r.connected < layout.clients) return out;
    // Let subscriptions settle (followers attach, handshakes finish) before measuring.
    await new Promise((res) => setTimeout(res, 1000));
    // Warm-up, not measured: the first interval after connecting paid for JIT compilation and lazy
    // start-up in the server, the clients and the appender (its first second ran at a fraction of
    // the rate with p50s of 200+ ms for every server). The same for every server.
    if (WARMUP_SECONDS > 0) await step(server, proc.pid, [pool], appender, WARMUP_RATE, layout, WARMUP_SECONDS, false);
    for (const rate of RATES) out.fixed.push(await step(server, proc.pid, [pool], appender, rate, layout, SECONDS, true));
    if (SEARCH) {
      /**
       * One rate of the search. On a shared machine one 3-second step can fail on someone else's
       * burst: a failed step is tried once more, and the rate passes if either attempt does.
       */
      const tryRate = async (rate: number): Promise<boolean> => {
        let pass = false;
        let disturbed = 0;
        for (let attempt = 0; attempt < 2 && !pass; attempt++) {
          const res = await step(server, proc.pid, [pool], appender, rate, layout, Math.min(SECONDS, 3), true);
          // A failure while other work on the machine took more than DISTURBED cores (machine busy
          // minus server, clients, appender and Redis) says nothing about the server: it does not
          // count as an attempt, at most MAX_DISTURBED times per rate (the same rule for every server).
          const h = res.harness;
          const others = h.machine !== null ? h.machine - (h.server ?? 0) - (h.clients ?? 0) - (h.appender ?? 0) - (h.redis ?? 0) : 0;
          const arrived = res.expected ? res.delivered / res.expected : 0;
          // A step counts only if the appender really offered (nearly) the rate: a producer that falls
          // behind would otherwise let a slow server "pass" at a rate it never saw.
          pass = arrived >= PASS.arrived && res.appendToClient.p99 !== null && res.appendToClient.p99 < PASS.p99 && res.achieved >= 0.95 * rate;
          out.steps.push({ rate, achieved: res.achieved, arrived, p99: res.appendToClient.p99, pass, others });
          const skip = !pass && others > DISTURBED && disturbed < MAX_DISTURBED;
          say(`  step ${rate}/s (achieved ${res.achieved}/s): arrived ${(100 * arrived).toFixed(2)} %, p99 ${res.appendToClient.p99} ms → ${pass ? "pass" : "fail"}${skip ? ` (others used ${others.toFixed(2)} cores: not counted)` : ""}`);
          if (skip) {
            disturbed++;
            attempt--;
          }
        }
        return pass;
      };
      let rate = SEARCH_FROM;
      let failed: number | undefined;
      for (let i = 0; i < SEARCH_STEPS && rate <= SEARCH_MAX; i++) {
        if (!(await tryRate(rate))) {
          failed = rate;
          break;
        }
        out.maxSustained = rate;
        rate = Math.round(rate * STEP_FACTOR);
      }
      // Refinement: ×1.6 steps quantise the ceiling (52k → 84k → 134k), so after the first failing
      // step bisect (geometrically) between the last pass and that fail, `--refine` times (2 by
      // default: within 1.6^(1/4) ≈ 12 % of the true ceiling). The same for every server; a server
      // that never failed keeps its "≥ last step" and gets no refinement steps.
      if (failed !== undefined && out.maxSustained !== null) {
        let lo = out.maxSustained;
        let hi = failed;
        for (let i = 0; i < REFINE; i++) {
          const mid = Math.round(Math.sqrt(lo * hi));
          if (mid <= lo || mid >= hi) break;
          if (await tryRate(mid)) lo = mid;
          else hi = mid;
        }
        out.maxSustained = lo;
        out.firstFailed = hi;
      } else if (failed !== undefined) out.firstFailed = failed;
    }
    return out;
  } finally {
    await pool.stop();
    await proc.stop();
    cleanup();
  }
}

/** V8 heap and external memory of a Tributary edge, from its own `/metrics` (undefined elsewhere). */
interface HeapFigures {
  heapTotal: number;
  heapUsed: number;
  external: number;
}
async function heapFigures(server: ServerName, url: string): Promise<HeapFigures | undefined> {
  if (!server.startsWith("tributary")) return undefined;
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const get = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? NaN);
    return { heapTotal: get("nodejs_heap_size_total_bytes"), heapUsed: get("nodejs_heap_size_used_bytes"), external: get("nodejs_external_memory_bytes") };
  } catch {
    return undefined;
  }
}

/** Full GCs in a server (gc-on-signal.mjs): resolves when the server reports them done (at most 30 s). */
async function collectGarbage(proc: SpawnedServer): Promise<void> {
  const done = `gc ${proc.pid} done`;
  await new Promise<void>((res) => {
    const timer = setTimeout(finish, 30_000);
    function finish(): void {
      clearTimeout(timer);
      proc.child.stderr?.off("data", onData);
      res();
    }
    function onData(chunk: Buffer): void {
      if (chunk.toString().includes(done)) finish();
    }
    proc.child.stderr?.on("data", onData);
    process.kill(proc.pid, "SIGUSR2");
  });
}

const mb = (bytes: number): string => (bytes / 1048576).toFixed(0);

/**
 * How long both idle samples wait after their connects before RSS is read. The same for both, and
 * past V8's memory reducer (it compacts the heap some 8 s after allocation falls off): a connect
 * burst leaves handshake garbage promoted to old space, interleaved with the live sessions, that
 * only that compaction gives back. With 3 s after the burst against 10 s before it, whether the
 * reducer had run yet decided the figure (1.8 to 6.8 KB per connection for the same build).
 */
const IDLE_SETTLE_MS = 15_000;

/**
 * RSS per idle connection as a slope: a first tenth of the connections (which also pays for lazy
 * start-up work: followers, parsers, JIT) and a settle, then the other nine tenths; the figure is
 * the RSS added by the second batch divided by its size. A before/after difference from a fresh
 * process would also count start-up garbage collected in between (Tributary's edge opens PGlite,
 * whose start-up churn alone moves RSS by more than 10,000 × 5 KB). Both samples are read after
 * full GCs in the server (collectGarbage), so the slope is what the connections keep.
 */
async function idleRss(
  server: ServerName,
  ids: string[],
  token: string,
  n: number,
  conversations: number,
): Promise<{
  perConnection: number | null;
  connected: number;
  /** Connections the slope is over (all but the first tenth). */
  added: number;
  before: number;
  after: number;
  rawBefore: number;
  rawAfter: number;
  heapBefore?: HeapFigures;
  heapAfter?: HeapFigures;
}> {
  const { server: proc, cleanup } = await startServer(server);
  const warm = new ClientPool();
  const main = new ClientPool();
  const settle = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));
  /** Median of 5 samples 200 ms apart: RSS moves with every GC. */
  const rss = async (): Promise<number> => {
    const xs: number[] = [];
    for (let i = 0; i < 5; i++) {
      xs.push(sampleProc(proc.pid)?.rssBytes ?? 0);
      await settle(200);
    }
    return xs.sort((a, b) => a - b)[2] ?? 0;
  };
  /**
   * Wait until RSS holds still (medians within 1 MB for 5 s in a row; at most 45 s): a process that
   * is still settling from start-up would otherwise move the slope by more than the connections
   * themselves — V8's memory reducer shrinks the heap some seconds after start-up's allocations
   * stop, and Tributary's edge (with PGlite in-process) once fell by 330–370 MB during the sample,
   * reading as −37 KB per connection.
   */
  const stableRss = async (): Promise<number> => {
    let last = await rss();
    let still = 0;
    for (let i = 0; i < 40 && still < 5; i++) {
      await settle(1000);
      const now = await rss();
      still = Math.abs(now - last) < 1 << 20 ? still + 1 : 0;
      last = now;
    }
    return last;
  };
  try {
    const k = KIND[server];
    const defs = (count: number, offset: number) =>
      Array.from({ length: count }, (_, i) => ({ conversationId: ids[(i + offset) % conversations] as string, token, sender: false }));
    const spec = { kind: k.kind, baseUrl: proc.url, connectConcurrency: 128, ...(k.path ? { pathTemplate: k.path } : {}) };
    const first = Math.max(1, Math.round(n / 10));
    await warm.start({ ...spec, clients: defs(first, 0) }, 1);
    await settle(IDLE_SETTLE_MS);
    const rawBefore = await rss();
    await collectGarbage(proc);
    const before = await stableRss();
    const heapBefore = await heapFigures(server, proc.url);
    const r = await main.start({ ...spec, clients: defs(n - first, first) }, WORKERS);
    await settle(IDLE_SETTLE_MS);
    const rawAfter = await rss();
    await collectGarbage(proc);
    const after = await stableRss();
    const heapAfter = await heapFigures(server, proc.url);
    const heap = heapBefore && heapAfter ? `; V8 heap total ${mb(heapBefore.heapTotal)} → ${mb(heapAfter.heapTotal)} MB, used ${mb(heapBefore.heapUsed)} → ${mb(heapAfter.heapUsed)} MB, external ${mb(heapBefore.external)} → ${mb(heapAfter.external)} MB` : "";
    say(`${server}: ${first} + ${r.connected} idle connections, RSS after a full GC ${mb(before)} → ${mb(after)} MB (without it ${mb(rawBefore)} → ${mb(rawAfter)} MB)${heap}`);
    return {
      perConnection: r.connected > 0 ? (after - before) / r.connected : null,
      connected: first + r.connected,
      added: r.connected,
      before,
      after,
      rawBefore,
      rawAfter,
      ...(heapBefore ? { heapBefore } : {}),
      ...(heapAfter ? { heapAfter } : {}),
    };
  } finally {
    await main.stop();
    await warm.stop();
    await proc.stop();
    cleanup();
  }
}

async function main(): Promise<void> {
  const started = new Date().toISOString();
  const load0 = loadavg();
  const maxK = Math.max(...LAYOUTS.map((l) => l.conversations));
  const ids = Array.from({ length: maxK }, (_, i) => `fan-${deployment.prefix.slice(6, 14)}-${i}`);
  const token = await signToken({ sub: OWNER, tid: TENANT, tier: "privileged" }, { secret: deployment.secret, ttlSeconds: 7200 });
  REDIS_PID = await redisPid();
  const appender = new Appender();
  APPENDER_PID = appender.child.pid;
  const results: LayoutResult[] = [];
  const idle: Record<string, Awaited<ReturnType<typeof idleRss>>> = {};
  try {
    await appender.init(ids);
    // `--rates 0` without --search: only the idle-connection measurement.
    const loaded = RATES.length > 0 || SEARCH;
    for (const layout of loaded ? LAYOUTS : []) {
      for (const s of SERVERS) {
        try {
          results.push(await measureLayout(s, appender, ids, token, layout));
        } catch (e) {
          say(`${s}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
    if (IDLE > 0) {
      for (const s of SERVERS) {
        try {
          idle[s] = await idleRss(s, ids, token, IDLE, Math.min(100, maxK));
        } catch (e) {
          say(`${s} idle: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
  } finally {
    appender.stop();
    await deletePrefix(REDIS_URL, deployment.prefix).catch(() => 0);
    removeDir(deployment.dataDir);
  }

  // ---- report -------------------------------------------------------------------------------------
  mkdirSync(OUT, { recursive: true });
  const runs = results.flatMap((r) => r.fixed);
  const report: BenchReport = {
    title: `fan-out: ${LAYOUTS.map((l) => `${l.clients} clients / ${l.conversations} conversations`).join(", ")}`,
    startedAt: started,
    machine: { cpus: cpus().length, loadAvg: load0, node: process.version },
    options: { servers: SERVERS, layouts: LAYOUTS, rates: RATES, seconds: SECONDS, search: SEARCH, idle: IDLE, workers: WORKERS },
    runs,
    ratios: {},
    notes: [
      `load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(" ")}`,
      ...(NICE_LOAD > 0 ? [`load generator (clients, appender) at nice ${NICE_LOAD}, servers and Redis at nice 0 (--nice-load)`] : []),
    ],
  };
  const get = (s: ServerName, layout: string): LayoutResult | undefined => results.find((r) => r.server === s && r.layout === layout);
  const at = (s: ServerName, layout: string, rate: number): RunResult | undefined => get(s, layout)?.fixed.find((r) => r.offeredRate === rate);
  const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a != null && b != null && b > 0 ? a / b : null);
  const refRate = RATES.includes(40_000) ? 40_000 : (RATES[RATES.length - 1] ?? 0);
  for (const l of LAYOUTS) {
    const lay = `${l.clients}x${l.conversations}`;
    Object.assign(report.ratios, {
      [`${lay} max sustained: tributary-sio / socketio (A) [target ≥ 4]`]: ratio(get("tributary-sio", lay)?.maxSustained, get("socketio", lay)?.maxSustained),
      [`${lay} max sustained: tributary-sio / bare-ws (C) [target ≥ 0.7]`]: ratio(get("tributary-sio", lay)?.maxSustained, get("bare-ws", lay)?.maxSustained),
      [`${lay} max sustained: tributary-sse / bare-sse (D) [target ≥ 0.8]`]: ratio(get("tributary-sse", lay)?.maxSustained, get("bare-sse", lay)?.maxSustained),
      [`${lay} CPU µs/delivery at ${refRate / 1000}k/s: tributary-sio / bare-ws (C) [target ≤ 1.3]`]: ratio(at("tributary-sio", lay, refRate)?.serverCpuMicrosPerDelivery, at("bare-ws", lay, refRate)?.serverCpuMicrosPerDelivery),
      [`${lay} CPU µs/delivery at ${refRate / 1000}k/s: tributary-sse / bare-sse (D)`]: ratio(at("tributary-sse", lay, refRate)?.serverCpuMicrosPerDelivery, at("bare-sse", lay, refRate)?.serverCpuMicrosPerDelivery),
      [`${lay} p99 ms at ${refRate / 1000}k/s, tributary-sio [target ≤ 10]`]: at("tributary-sio", lay, refRate)?.appendToClient.p99 ?? null,
      [`${lay} p99 ms at ${refRate / 1000}k/s, tributary-sse`]: at("tributary-sse", lay, refRate)?.appendToClient.p99 ?? null,
    });
  }
  const first = LAYOUTS[0] ? `${LAYOUTS[0].clients}x${LAYOUTS[0].conversations}` : "";
  for (const [s, v] of Object.entries(idle)) report.ratios[`idle RSS per connection, ${s}, KB (${v.connected} conns) [target ≤ 5]`] = v.perConnection === null ? null : v.perConnection / 1024;

  const lines = [toMarkdown(report), "", "### Step search (highest deliveries/s with ≥ 99.9 % arrived and p99 < 100 ms)", "", "| server | layout | max sustained deliveries/s | first failed | steps (rate (achieved): arrived, p99) |", "|---|---|---:|---:|---|"];
  for (const r of results) {
    const atLeast = r.firstFailed === undefined && r.maxSustained !== null ? "≥ " : "";
    lines.push(`| ${r.server} | ${r.layout} | ${atLeast}${r.maxSustained?.toLocaleString("en-US") ?? "–"} | ${r.firstFailed?.toLocaleString("en-US") ?? "–"} | ${r.steps.map((s) => `${s.rate} (${s.achieved}): ${(100 * s.arrived).toFixed(2)} %, ${s.p99 ?? "–"} ms${s.pass ? "" : `, others ${s.others.toFixed(2)}`}`).join("; ")} |`);
  }
  if (Object.keys(idle).length > 0) {
    lines.push("", "### Idle connections", "", "| server | connected | RSS before MB | RSS after MB | KB per connection | V8 heap used, KB per connection | without the GC: before → after MB |", "|---|---:|---:|---:|---:|---:|---|");
    for (const [s, v] of Object.entries(idle)) {
      // The heap slope is the steadier figure: RSS also moves with malloc and V8's page release.
      const heap = v.heapBefore && v.heapAfter && v.added > 0 ? ((v.heapAfter.heapUsed - v.heapBefore.heapUsed) / v.added / 1024).toFixed(1) : "–";
      lines.push(`| ${s} | ${v.connected} | ${mb(v.before)} | ${mb(v.after)} | ${v.perConnection === null ? "–" : (v.perConnection / 1024).toFixed(1)} | ${heap} | ${mb(v.rawBefore)} → ${mb(v.rawAfter)} |`);
    }
  }
  writeFileSync(join(OUT, "fanout.md"), lines.join("\n") + "\n");
  writeFileSync(join(OUT, "fanout.json"), JSON.stringify({ report, results, idle }, null, 2) + "\n");
  writeFileSync(join(OUT, "fanout-timeline.svg"), renderChart(report.title, runs.map((r) => ({ name: r.name, points: r.series }))));
  const layouts = [...new Set(results.map((r) => r.layout))];
  const names = [...new Set(results.map((r) => r.server))];
  writeFileSync(
    join(OUT, "fanout-max.svg"),
    renderBars("highest deliveries/s with ≥ 99.9 % arrived and p99 < 100 ms", "deliveries/s", layouts, names.map((n) => ({ name: n, values: layouts.map((l) => get(n, l)?.maxSustained ?? null) }))),
  );
  writeFileSync(
    join(OUT, "fanout-p99.svg"),
    renderBars("append → client p99 (ms) at fixed rates", "ms", RATES.map((r) => `${r / 1000}k/s`), names.map((n) => ({ name: n, values: RATES.map((r) => at(n, first, r)?.appendToClient.p99 ?? null) }))),
  );
  const cpuCategories = LAYOUTS.flatMap((l) => RATES.map((r) => ({ layout: `${l.clients}x${l.conversations}`, rate: r })));
  writeFileSync(
    join(OUT, "fanout-cpu.svg"),
    renderBars(
      "server CPU µs per delivery at fixed rates (lower is better)",
      "µs/delivery",
      cpuCategories.map((c) => `${c.layout} @${c.rate / 1000}k/s`),
      names.map((n) => ({ name: n, values: cpuCategories.map((c) => at(n, c.layout, c.rate)?.serverCpuMicrosPerDelivery ?? null) })),
    ),
  );
  process.stdout.write(lines.join("\n") + "\n");
  process.stdout.write(`\nwrote ${OUT}/fanout.md, fanout.json, fanout-timeline.svg, fanout-max.svg, fanout-p99.svg, fanout-cpu.svg\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`fan-out bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
