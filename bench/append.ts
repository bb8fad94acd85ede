/**
 * Append throughput of the Redis event store next to raw `redis-benchmark` XADD, measured in the
 * same run on the same Redis, reported as ratios (issue 2 §Benchmark).
 *
 *   npx tsx bench/append.ts [--seconds 2] [--rounds 3] [--extras] [--partitions 16] [--only single:64]
 *                           [--no-autopipelining] [--json out.json]
 *
 * Environment: BENCH_REDIS_URL [redis://127.0.0.1:6379]. Loopback only; every case is bounded in
 * time; all keys live under a random `bench:<id>:` prefix and are deleted at the end.
 *
 * The machine may be shared and busy: each case runs ours and raw XADD back to back, `--rounds`
 * times, alternating which goes first, and reports the median of the per-round ratios (the ratio of
 * two measurements taken seconds apart is far steadier than either absolute figure).
 *
 * The store's client uses ioredis auto-pipelining (commands issued in the same tick share one
 * socket write), as a production client should; `--no-autopipelining` measures without it.
 *
 * A third column runs the same XADDs from Node through the same ioredis client: on a busy 2-core
 * machine a Node client's round trip costs far more than redis-benchmark's (C), so that ratio shows
 * what the store itself adds.
 *
 * "append" is the store as configured by default, i.e. with group commit (docs/event-store.md): the
 * table shows how many appends a script call carried on average, and the same store with
 * `groupCommit: false` (one script call per append) measured in the same rounds. Writers' streams
 * have random ids, so they spread over `--partitions` (the configuration default, 16) as in
 * production; on a single Redis one call may carry appends of any partitions, so `--partitions 1`
 * groups no more than 16 (it did when calls were per partition, as they still are on a cluster).
 * `--extras` adds the 1-XADD Lua floor and the same XADDs through ioredis; `--only name:W` runs one case.
 *
 * Cases (events/s):
 *   - single-event appends from W = 1, 8, 64 concurrent writers (one stream each, as with one
 *     writer per aggregate, I3) on one ioredis connection, vs `redis-benchmark -c W -P 1` XADD;
 *   - batched appends of B events per call from W writers vs `redis-benchmark -c W -P B` XADD
 *     (the same number of entries in flight per client).
 * The raw XADD payload is as long as the encoded stored event of the appends. An append does more
 * than one XADD (a second XADD to the partition log, the meta HSET, the dedupe SET, the chain hash in
 * Node), so a ratio of 1 is not the goal; the issue's target is single appends ≥ 50 % of raw XADD.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { encodeEvent } from "../core/codec.js";
import { CURRENT_SCHEMA, type NewEvent } from "../core/envelope.js";
import type { StreamRef } from "../core/keys.js";
import { createRedisEventStore } from "../core/redis/event-store.js";
import { deletePrefix } from "./lib/redis-cleanup.js";
import { flag, hasFlag } from "./lib/args.js";

const SECONDS = Number(flag("--seconds") ?? 2);
const ROUNDS = Math.max(1, Number(flag("--rounds") ?? 3));
const AUTOPIPELINING = !hasFlag("--no-autopipelining");
const JSON_OUT = flag("--json");
/** Also measure the 1-XADD Lua floor and the same XADDs through ioredis (about +60 % run time). */
const EXTRAS = hasFlag("--extras");
const ONLY = flag("--only"); // e.g. "single:64" — one case, for quick checks
const URL_ = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const url = new URL(URL_);
const HOST = url.hostname;
const PORT = url.port || "6379";
if (!["127.0.0.1", "localhost", "::1"].includes(HOST)) {
  console.error(`bench: loopback only, got ${HOST}`);
  process.exit(2);
}
/** The configuration default (core/config.ts): writers' streams spread over them as in production. */
const PARTITIONS = Number(flag("--partitions") ?? 16);
const prefix = `bench:${randomUUID().slice(0, 8)}:`;

/** A typical streamed-reply event: one assistant.delta of a few tokens. */
const AT = new Date().toISOString();
function delta(i: number): NewEvent {
  return { type: "assistant.delta", data: { messageId: "m-0123456789abcdef", index: i, text: " the quick brown" }, at: AT };
}
const sampleBytes = encodeEvent({ s: CURRENT_SCHEMA, version: 1234, ...delta(1234) }).length;

interface Row {
  case: string;
  writers: number;
  batch: number;
  /** Medians over the rounds; "append" = the store as configured by default (group commit). */
  appendEventsPerSec: number;
  /** The same store with group commit off (one append-5.lua call per append), as before. */
  aloneEventsPerSec: number;
  ioredisXaddPerSec: number;
  luaXaddPerSec: number;
  luaFloorRatio: number;
  ratioToIoredis: number;
  nodeUsPerAppend: number;
  redisUsPerAppend: number;
  appendsPerCall: number;
  xaddPerSec: number;
  ratio: number;
  ratios: number[];
  aloneRatio: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** Redis's own CPU time in script calls so far (INFO commandstats; the server may be shared). */
async function scriptStats(redis: Redis): Promise<{ calls: number; usec: number }> {
  const info = await redis.info("commandstats");
  let calls = 0;
  let usec = 0;
  for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+),usec=(\d+)/g)) {
    calls += Number(m[1]);
    usec += Number(m[2]);
  }
  return { calls, usec };
}

interface AppendRun {
  eventsPerSec: number;
  /** Node CPU time (user + system) per append, µs. */
  nodeUsPerAppend: number;
  /** Redis CPU time in scripts per append, µs (includes other clients' scripts on a shared server). */
  redisUsPerAppend: number;
  /** Appends per script call (group commit's mean group size; 1 without it). */
  appendsPerCall: number;
}

async function runAppends(redis: Redis, writers: number, batch: number, seconds: number, groupCommit = true): Promise<AppendRun> {
  const store = createRedisEventStore(redis, { partitions: PARTITIONS, idemTtlMs: 60_000, ...(groupCommit ? {} : { groupCommit: false as const }) });
  const deadline = performance.now() + seconds * 1000;
  let events = 0;
  let appends = 0;
  const stats0 = await scriptStats(redis);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const ref: StreamRef = { kind: "conversation", id: `w${w}-${randomUUID()}` };
      let version = 0;
      while (performance.now() < deadline) {
        const evs = Array.from({ length: batch }, (_, i) => delta(version + i));
        await store.append(ref, version, evs, `c${version}`);
        version += batch;
        events += batch;
        appends += 1;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const stats1 = await scriptStats(redis);
  // The INFO call itself is not a script; other clients' scripts on a shared server would count.
  const calls = Math.max(1, stats1.calls - stats0.calls);
  return {
    eventsPerSec: events / elapsed,
    nodeUsPerAppend: (cpu.user + cpu.system) / Math.max(1, appends),
    redisUsPerAppend: (stats1.usec - stats0.usec) / Math.max(1, appends),
    appendsPerCall: appends / calls,
  };
}

/**
 * The same XADDs from Node through the same ioredis client (W loops, B-deep pipelines): separates
 * what the store adds (script, second XADD, meta, dedupe, hashing) from what any Node client pays.
 */
async function runIoredisXadd(redis: Redis, writers: number, batch: number, seconds: number): Promise<number> {
  const payload = Buffer.alloc(sampleBytes, 0x78);
  const deadline = performance.now() + seconds * 1000;
  let events = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const key = `ioredis:${w}`;
      while (performance.now() < deadline) {
        if (batch === 1) await redis.xadd(key, "*", "e", payload);
        else {
          const p = redis.pipeline();
          for (let i = 0; i < batch; i++) p.xadd(key, "*", "e", payload);
          await p.exec();
        }
        events += batch;
      }
    }),
  );
  return events / ((performance.now() - started) / 1000);
}

function redisBenchmark(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn("redis-benchmark", ["-h", HOST, "-p", PORT, "--csv", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => {
      // CSV: a header line, then "<command>","<rps>",…
      const line = out.trim().split("\n").find((l) => !l.startsWith('"test"'));
      const rps = line ? Number(line.split(",")[1]?.replace(/"/g, "")) : NaN;
      if (code !== 0 || !Number.isFinite(rps)) reject(new Error(`redis-benchmark failed (${code}): ${err || out}`));
      else resolve(rps);
    });
  });
}

/** Raw XADD rate with C clients and pipeline depth P, run for about `seconds` (pilot to size -n). */
async function runXadd(key: string, clients: number, pipeline: number, seconds: number, viaLuaSha?: string): Promise<number> {
  const payload = "x".repeat(sampleBytes);
  const cmd = viaLuaSha === undefined ? ["XADD", key, "*", "e", payload] : ["EVALSHA", viaLuaSha, "1", key, payload];
  const pilot = await redisBenchmark(["-c", String(clients), "-P", String(pipeline), "-n", String(Math.max(2000, clients * pipeline * 20)), ...cmd]);
  const n = Math.min(5_000_000, Math.max(5000, Math.round(pilot * seconds)));
  return redisBenchmark(["-c", String(clients), "-P", String(pipeline), "-n", String(n), ...cmd]);
}

/**
 * The floor for any Lua-based append: a script whose only work is the same single XADD, driven by
 * redis-benchmark like the raw XADD. Its rate bounds what one-script appends (I2) can reach here.
 */
const LUA_XADD = "return redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])";

async function cleanup(redis: Redis): Promise<void> {
  await deletePrefix(URL_, prefix);
  redis.disconnect();
}

async function main(): Promise<void> {
  const redis = new Redis(URL_, { keyPrefix: prefix, enableAutoPipelining: AUTOPIPELINING });
  await redis.ping();
  const rows: Row[] = [];
  const cases: Array<{ name: string; writers: number; batch: number }> = [
    { name: "single", writers: 1, batch: 1 },
    { name: "single", writers: 8, batch: 1 },
    { name: "single", writers: 64, batch: 1 },
    { name: "batched", writers: 1, batch: 10 },
    { name: "batched", writers: 8, batch: 10 },
  ].filter((c) => ONLY === undefined || ONLY === `${c.name}:${c.writers}`);
  try {
    // Warm up the script caches, the JIT and the connection (both append paths).
    await runAppends(redis, 4, 1, 0.5);
    await runAppends(redis, 4, 1, 0.3, false);
    const luaSha = String(await redis.script("LOAD", LUA_XADD));
    // redis-benchmark must exist before we spend minutes measuring.
    await redisBenchmark(["-n", "2000", "PING"]);
    for (const c of cases) {
      const ours: number[] = [];
      const alone: number[] = [];
      const viaNode: number[] = [];
      const nodeUs: number[] = [];
      const redisUs: number[] = [];
      const perCall: number[] = [];
      const measure = async (): Promise<void> => {
        const r = await runAppends(redis, c.writers, c.batch, SECONDS);
        ours.push(r.eventsPerSec);
        nodeUs.push(r.nodeUsPerAppend);
        redisUs.push(r.redisUsPerAppend);
        perCall.push(r.appendsPerCall);
      };
      const raws: number[] = [];
      const luaFloor: number[] = [];
      const key = `${prefix}raw:${c.writers}:${c.batch}`;
      for (let round = 0; round < ROUNDS; round++) {
        if (EXTRAS) {
          viaNode.push(await runIoredisXadd(redis, c.writers, c.batch, SECONDS));
          luaFloor.push(await runXadd(`${key}:lua`, c.writers, c.batch, SECONDS, luaSha));
        }
        alone.push((await runAppends(redis, c.writers, c.batch, SECONDS, false)).eventsPerSec);
        if (round % 2 === 0) {
          await measure();
          raws.push(await runXadd(key, c.writers, c.batch, SECONDS));
        } else {
          raws.push(await runXadd(key, c.writers, c.batch, SECONDS));
          await measure();
        }
      }
      const ratios = ours.map((o, i) => o / (raws[i] as number));
      const round1 = (x: number): number => Math.round(x * 10) / 10;
      const row: Row = {
        case: c.name,
        writers: c.writers,
        batch: c.batch,
        appendEventsPerSec: Math.round(median(ours)),
        aloneEventsPerSec: Math.round(median(alone)),
        ioredisXaddPerSec: EXTRAS ? Math.round(median(viaNode)) : NaN,
        luaXaddPerSec: EXTRAS ? Math.round(median(luaFloor)) : NaN,
        luaFloorRatio: EXTRAS ? median(luaFloor.map((l, i) => l / (raws[i] as number))) : NaN,
        ratioToIoredis: EXTRAS ? median(ours.map((o, i) => o / (viaNode[i] as number))) : NaN,
        nodeUsPerAppend: round1(median(nodeUs)),
        redisUsPerAppend: round1(median(redisUs)),
        appendsPerCall: round1(median(perCall)),
        xaddPerSec: Math.round(median(raws)),
        ratio: median(ratios),
        ratios,
        aloneRatio: median(alone.map((o, i) => o / (raws[i] as number))),
      };
      rows.push(row);
      process.stderr.write(
        `${c.name} W=${c.writers} B=${c.batch}: append ${row.appendEventsPerSec}/s (${row.appendsPerCall} appends/call), without group commit ${row.aloneEventsPerSec}/s, XADD ${row.xaddPerSec}/s, ratio ${row.ratio.toFixed(2)} (without group commit ${row.aloneRatio.toFixed(2)}), 1-XADD Lua ${row.luaXaddPerSec}/s, ioredis XADD ${row.ioredisXaddPerSec}/s, node ${row.nodeUsPerAppend} µs/append, redis ${row.redisUsPerAppend} µs/append (rounds: ${ratios.map((r) => r.toFixed(2)).join(", ")})\n`,
      );
    }
  } finally {
    await cleanup(redis);
  }
  const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(0)} %` : "–");
  const num = (x: number): string => (Number.isFinite(x) ? String(x) : "–");
  const md = [
    `Payload: ${sampleBytes}-byte stored event (assistant.delta); ${PARTITIONS} partitions; ${SECONDS}s per measurement, ${ROUNDS} rounds, medians; auto-pipelining ${AUTOPIPELINING ? "on" : "off"}; redis-benchmark XADD with the same payload length.`,
    "",
    "| case | writers (= -c) | events per append (= -P) | append events/s (group commit) | appends per script call | raw XADD/s | ratio (median) | ratio per round | without group commit events/s (ratio) | 1-XADD Lua script/s (ratio to XADD) | ioredis XADD/s (append's ratio to it) | Node CPU µs/append | Redis µs/append |",
    "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.case} | ${r.writers} | ${r.batch} | ${r.appendEventsPerSec} | ${r.appendsPerCall} | ${r.xaddPerSec} | ${pct(r.ratio)} | ${r.ratios.map(pct).join(", ")} | ${r.aloneEventsPerSec} (${pct(r.aloneRatio)}) | ${num(r.luaXaddPerSec)} (${pct(r.luaFloorRatio)}) | ${num(r.ioredisXaddPerSec)} (${pct(r.ratioToIoredis)}) | ${r.nodeUsPerAppend} | ${r.redisUsPerAppend} |`,
    ),
  ].join("\n");
  console.log(md);
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ payloadBytes: sampleBytes, partitions: PARTITIONS, seconds: SECONDS, rounds: ROUNDS, autoPipelining: AUTOPIPELINING, rows }, null, 2));
}

await main();
