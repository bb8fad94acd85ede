import { existsSync, mkdirSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { keys } from "../../core/keys.js";
import { testDatabase, type TestDb } from "../support/postgres.js";
import { freePort, privateRedis, type PrivateRedis } from "../support/private-services.js";
import { mintToken, TEST_JWT_SECRET } from "../support/tokens.js";
import { Follower, followSse, newStats, send, type Accepted } from "./load.js";
import { Role } from "./roles.js";

/**
 * Issue 7 §4, opt-in: a soak at a steady load for SOAK_SECONDS (e.g. 600 for the accelerated hour).
 * Sampled every SOAK_SAMPLE_MS: RSS of the edge, worker and projector processes, and the edge's
 * event-loop lag (p99, from its /metrics). Checked: no RSS growth trend over the second half of the
 * run (least-squares slope × that span stays under 10 % of the median), and once the clients leave:
 * Redis client connections (CLIENT LIST) and the edge's active handles (sockets, timers) back to the
 * idle level measured after a warm-up round of the same load, and no pending entry (XPENDING) in any
 * consumer group of any partition.
 *
 * Each role also reports its memory split (memory-probe.cjs: JS heap committed / used, external
 * memory, RSS), printed as curves for the worker, so a failure says whether the JS heap grew or
 * something outside it (Buffers, native modules, the allocator).
 *
 * Not run by default: it takes minutes of a shared 2-core machine.
 */
const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 0);
const SAMPLE_MS = Number(process.env.SOAK_SAMPLE_MS ?? 5000);
const CONVERSATIONS = Number(process.env.SOAK_CONVERSATIONS ?? 16);
const PARTITIONS = 4;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The last memory split a role's memory-probe.cjs wrote (zeros before its first). */
function probeOf(dir: string, pid: number | undefined): { heapTotal: number; heapUsed: number; external: number } {
  const file = join(dir, `${pid}.json`);
  if (!pid || !existsSync(file)) return { heapTotal: 0, heapUsed: 0, external: 0 };
  try {
    return JSON.parse(readFileSync(file, "utf8")) as { heapTotal: number; heapUsed: number; external: number };
  } catch {
    return { heapTotal: 0, heapUsed: 0, external: 0 }; // caught mid-write: the next sample has it
  }
}

function rssOf(pid: number | undefined): number {
  if (!pid) return 0;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return Number(line?.split(" ").at(-1) ?? NaN);
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? 0;

describe("soak", () => {
  let redis: PrivateRedis | undefined;
  let db: TestDb | undefined;
  let dataDir: string | undefined;
  const roles: Role[] = [];
  afterAll(async () => {
    await Promise.all(roles.map((r) => r.stop()));
    await redis?.cleanup();
    await db?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it.runIf(SOAK_SECONDS > 0)(`steady load for SOAK_SECONDS (${SOAK_SECONDS} s; opt-in): no growth, no leaks, nothing pending`, { timeout: (SOAK_SECONDS + 300) * 1000 }, async () => {
    redis = await privateRedis();
    db = await testDatabase("pg");
    dataDir = mkdtempSync(join(tmpdir(), "trib-soak-"));
    const probeDir = join(dataDir, "memory");
    mkdirSync(probeDir);
    const env = {
      REDIS_URL: redis.url,
      DATABASE_URL: db.env.DATABASE_URL as string,
      DATA_DIR: dataDir,
      PARTITIONS: String(PARTITIONS),
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      SIM_TOKENS_PER_SEC: "200",
      SIM_MAX_TOKENS: "16",
      LOG_LEVEL: "warn",
      HOST: "127.0.0.1",
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${join(import.meta.dirname, "memory-probe.cjs")}`.trim(),
      MEMORY_PROBE_DIR: probeDir,
    };
    const edge = new Role({ name: "edge", kind: "edge", port: await freePort() }, env);
    roles.push(edge, new Role({ name: "worker", kind: "worker" }, env), new Role({ name: "projector", kind: "projector" }, env));
    for (const r of roles) r.start();
    await edge.ready();
    const admin = new Redis(redis.url);
    const convs: Array<{ id: string; token: string }> = [];
    for (let i = 0; i < CONVERSATIONS; i++) {
      const token = await mintToken({ sub: `u-soak-${i}`, tid: "t-soak", tier: "privileged" });
      const res = await fetch(`${edge.url}/v1/conversations`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{}" });
      convs.push({ id: ((await res.json()) as { id: string }).id, token });
    }
    const stats = newStats();
    const accepted: Accepted[] = [];
    const samples: Array<{ t: number; edge: number; worker: number; projector: number; lagP99: number; workerHeap: ReturnType<typeof probeOf> }> = [];

    /** Clients on, `seconds` of load (sampled when `sample`), clients off. */
    const load = async (seconds: number, sample: boolean) => {
      let stopping = false;
      const followers: Follower[] = [];
      const clients: Promise<void>[] = [];
      const senders = convs.map((c) => {
        const f = new Follower("sse", c.id);
        followers.push(f);
        clients.push(followSse(f, () => edge.url, c.token));
        return send({ conversationId: c.id, token: c.token, pick: () => edge.url, watch: f, until: () => stopping, thinkMs: 100, accepted, stats });
      });
      const t0 = Date.now();
      while (Date.now() - t0 < seconds * 1000) {
        await sleep(SAMPLE_MS);
        if (!sample) continue;
        samples.push({
          t: (Date.now() - t0) / 1000,
          edge: rssOf(edge.proc?.pid),
          worker: rssOf(roles[1]!.proc?.pid),
          projector: rssOf(roles[2]!.proc?.pid),
          lagP99: await metric(edge.url, "nodejs_eventloop_lag_p99_seconds"),
          workerHeap: probeOf(probeDir, roles[1]!.proc?.pid),
        });
      }
      stopping = true;
      await Promise.all(senders);
      await sleep(3000);
      for (const f of followers) f.stop();
      await Promise.all(clients);
    };
    /** Idle level: Redis connections, the edge's active handles, and pending entries of every group. */
    const idle = async () => {
      const connections = String(await admin.client("LIST")).trim().split("\n").length;
      const handles = await metric(edge.url, "nodejs_active_handles_total");
      let pending = 0;
      for (let p = 0; p < PARTITIONS; p++) {
        for (const key of [keys.cmd(p), keys.log(p)]) {
          const groups = ((await admin.xinfo("GROUPS", key).catch(() => [])) as unknown[][]).map((g) => String(g[1]));
          for (const g of groups) pending += Number(((await admin.xpending(key, g)) as unknown[])[0]);
        }
      }
      return { connections, handles, pending };
    };

    // Warm-up: every lazily opened connection (fan-out readers, pools) exists afterwards, so the
    // idle level measured then is what the end of the soak must come back to.
    await load(Math.min(20, SOAK_SECONDS), false);
    await sleep(3000);
    const base = await idle();
    await load(SOAK_SECONDS, true);
    expect(stats.unexpected).toEqual([]);

    const half = samples.slice(Math.floor(samples.length / 2));
    const growth: Record<string, number> = {};
    for (const k of ["edge", "worker", "projector"] as const) {
      const ys = half.map((s) => s[k]);
      const span = (half.at(-1)?.t ?? 0) - (half[0]?.t ?? 0);
      growth[k] = (slope(half.map((s) => s.t), ys) * span) / median(ys);
    }

    // Quiet again: connections and handles settle, nothing is left pending once replies ended.
    let end = await idle();
    for (let i = 0; i < 60 && (end.connections > base.connections || end.handles > base.handles || end.pending > 0); i++) {
      await sleep(1000);
      end = await idle();
    }
    admin.disconnect();
    const figures = { seconds: SOAK_SECONDS, samples: samples.length, accepted: accepted.length, growth, lagP99MaxMs: Math.max(...samples.map((s) => s.lagP99 * 1000)), rssMiB: Object.fromEntries(["edge", "worker", "projector"].map((k) => [k, Math.round(median(samples.map((s) => s[k as "edge"])) / 1048576)])), base, end };
    // The shape of each RSS curve (MiB at 12 evenly spaced samples), to tell a trend from GC sawtooth.
    const step = Math.max(1, Math.floor(samples.length / 12));
    const series = Object.fromEntries(["edge", "worker", "projector"].map((k) => [k, samples.filter((_, i) => i % step === 0).map((s) => Math.round(s[k as "edge"] / 1048576))]));
    // The worker's RSS split: V8's committed JS heap, the part of it in use, external (Buffers).
    const mib = (n: number) => Math.round(n / 1048576);
    const every = samples.filter((_, i) => i % step === 0);
    const workerSplit = { heapTotal: every.map((s) => mib(s.workerHeap.heapTotal)), heapUsed: every.map((s) => mib(s.workerHeap.heapUsed)), external: every.map((s) => mib(s.workerHeap.external)) };
    console.log(`soak figures ${JSON.stringify(figures)}\nsoak RSS series (MiB) ${JSON.stringify(series)}\nsoak worker memory series (MiB) ${JSON.stringify(workerSplit)}`);
    for (const k of Object.keys(growth)) expect(growth[k], `${k} RSS growth over the second half`).toBeLessThan(0.1);
    expect(end.connections).toBeLessThanOrEqual(base.connections);
    expect(end.handles).toBeLessThanOrEqual(base.handles);
    expect(end.pending).toBe(0);
  });
});
