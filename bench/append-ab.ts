/**
 * A/B of single-event appends: the event store of another checkout ("base", e.g. a worktree of
 * main) against this checkout's, in the SAME process and rounds, each next to raw `redis-benchmark`
 * XADD (same payload, -c W), so that a change to the append path is judged by paired ratios on a
 * machine whose absolute rates move ±30 % with load (docs/benchmarks.md).
 *
 *   npx tsx bench/append-ab.ts --base /work/wt-base [--writers 1,8,64] [--seconds 1.5] [--rounds 5]
 *
 * (`--base`: a checkout with its own `npm ci`, e.g. `git worktree add --detach /work/wt-base main`.)
 *
 * Per round: raw XADD, then base and this checkout's store (order alternating per round), then raw
 * XADD again; an append rate's ratio is to the mean of the two raw rates around it. Each store runs
 * on its own checkout's ioredis client (same options as bench/append.ts: auto-pipelining, a key
 * prefix), 16 partitions, group commit as configured by default. Printed per W: median raw XADD/s,
 * base and ours as % of raw XADD (median, per round), ours ÷ base (median of the per-round quotients),
 * Node CPU µs per append (process user + system) and Redis µs per append (INFO commandstats time in
 * EVALSHA/EVAL, wall time inside scripts) for base → ours.
 *
 * Environment: BENCH_REDIS_URL [redis://127.0.0.1:6379], loopback only; keys under a random
 * `bench:<id>:` prefix, deleted at the end.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { encodeEvent } from "../core/codec.js";
import { CURRENT_SCHEMA, type NewEvent } from "../core/envelope.js";
import { createRedisEventStore } from "../core/redis/event-store.js";
import { deletePrefix } from "./lib/redis-cleanup.js";
import { flag } from "./lib/args.js";

const BASE = flag("--base");
if (!BASE) {
  console.error("usage: npx tsx bench/append-ab.ts --base <checkout> [--writers 1,8,64] [--seconds 1.5] [--rounds 5]");
  process.exit(2);
}
const SECONDS = Number(flag("--seconds") ?? 1.5);
const ROUNDS = Math.max(1, Number(flag("--rounds") ?? 5));
const WRITERS = (flag("--writers") ?? "1,8,64").split(",").map(Number);
const URL_ = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const url = new URL(URL_);
if (!["127.0.0.1", "localhost", "::1"].includes(url.hostname)) {
  console.error(`bench: loopback only, got ${url.hostname}`);
  process.exit(2);
}

type CreateStore = typeof createRedisEventStore;
const base = (await import(`${BASE}/core/redis/event-store.ts`)) as { createRedisEventStore: CreateStore };
const baseIoredis = (await import(`${BASE}/node_modules/ioredis/built/index.js`)) as { default: { Redis: typeof Redis } };

const prefix = `bench:${randomUUID().slice(0, 8)}:`;
const AT = new Date().toISOString();
const delta = (i: number): NewEvent => ({ type: "assistant.delta", data: { messageId: "m-0123456789abcdef", index: i, text: " the quick brown" }, at: AT });
const sampleBytes = encodeEvent({ s: CURRENT_SCHEMA, version: 1234, ...delta(1234) }).length;
const oursClient = new Redis(URL_, { keyPrefix: prefix, enableAutoPipelining: true });
const baseClient = new baseIoredis.default.Redis(URL_, { keyPrefix: prefix, enableAutoPipelining: true });

async function scriptUsec(): Promise<number> {
  const info = await oursClient.info("commandstats");
  let usec = 0;
  for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+),usec=(\d+)/g)) usec += Number(m[2]);
  return usec;
}

async function appends(create: CreateStore, client: Redis, writers: number, seconds: number): Promise<{ rate: number; node: number; redis: number }> {
  const store = create(client, { partitions: 16, idemTtlMs: 60_000 });
  const deadline = performance.now() + seconds * 1000;
  let n = 0;
  const usec0 = await scriptUsec();
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const ref = { kind: "conversation" as const, id: `w${w}-${randomUUID()}` };
      for (let v = 0; performance.now() < deadline; v++, n++) await store.append(ref, v, [delta(v)], `c${v}`);
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const usec = (await scriptUsec()) - usec0;
  return { rate: n / elapsed, node: (cpu.user + cpu.system) / Math.max(1, n), redis: usec / Math.max(1, n) };
}

function redisBenchmark(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn("redis-benchmark", ["-h", url.hostname, "-p", url.port || "6379", "--csv", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.on("error", reject);
    p.on("close", () => {
      const line = out.trim().split("\n").find((l) => !l.startsWith('"test"'));
      const rps = Number(line?.split(",")[1]?.replace(/"/g, ""));
      if (Number.isFinite(rps)) resolve(rps);
      else reject(new Error(`redis-benchmark failed: ${out}`));
    });
  });
}

async function rawXadd(writers: number, seconds: number): Promise<number> {
  const cmd = ["XADD", `${prefix}raw:${writers}`, "*", "e", "x".repeat(sampleBytes)];
  const pilot = await redisBenchmark(["-c", String(writers), "-P", "1", "-n", String(Math.max(2000, writers * 20)), ...cmd]);
  return redisBenchmark(["-c", String(writers), "-P", "1", "-n", String(Math.min(5_000_000, Math.max(5000, Math.round(pilot * seconds)))), ...cmd]);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const pct = (x: number): string => `${(100 * x).toFixed(0)} %`;

try {
  // Warm up both stores (script cache, JIT, connections).
  await appends(createRedisEventStore, oursClient, 4, 0.5);
  await appends(base.createRedisEventStore, baseClient as Redis, 4, 0.5);
  console.log(`Payload ${sampleBytes} bytes; ${SECONDS}s per measurement; ${ROUNDS} rounds; base = ${BASE}`);
  console.log("");
  console.log("| W | raw XADD/s | base (% of raw XADD; rounds) | ours (% of raw XADD; rounds) | ours ÷ base | Node µs/append base → ours | Redis µs/append base → ours |");
  console.log("|---:|---:|---|---|---:|---:|---:|");
  for (const w of WRITERS) {
    const raws: number[] = [];
    const rows = { base: [] as Array<{ rate: number; node: number; redis: number }>, ours: [] as Array<{ rate: number; node: number; redis: number }> };
    for (let round = 0; round < ROUNDS; round++) {
      const before = await rawXadd(w, SECONDS);
      const order = round % 2 === 0 ? (["base", "ours"] as const) : (["ours", "base"] as const);
      for (const which of order) {
        rows[which].push(which === "base" ? await appends(base.createRedisEventStore, baseClient as Redis, w, SECONDS) : await appends(createRedisEventStore, oursClient, w, SECONDS));
      }
      const after = await rawXadd(w, SECONDS);
      raws.push((before + after) / 2);
    }
    const b = rows.base.map((r, i) => r.rate / (raws[i] as number));
    const o = rows.ours.map((r, i) => r.rate / (raws[i] as number));
    const speedup = median(o.map((x, i) => x / (b[i] as number)));
    const us = (rs: Array<{ node: number; redis: number }>, k: "node" | "redis"): string => median(rs.map((r) => r[k])).toFixed(1);
    console.log(
      `| ${w} | ${Math.round(median(raws))} | ${pct(median(b))} (${b.map(pct).join(", ")}) | ${pct(median(o))} (${o.map(pct).join(", ")}) | ${speedup.toFixed(2)} | ${us(rows.base, "node")} → ${us(rows.ours, "node")} | ${us(rows.base, "redis")} → ${us(rows.ours, "redis")} |`,
    );
  }
} finally {
  await deletePrefix(URL_, prefix);
  oursClient.disconnect();
  baseClient.disconnect();
}
