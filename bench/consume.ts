/**
 * Consumption throughput of the consumer-group runtime (issue 2 §Benchmark): events/s through
 * `StreamConsumer`, batched, one process, against a real Redis on loopback.
 *
 *   npx tsx bench/consume.ts [--events 200000] [--partitions 4] [--rounds 2] [--json out.json]
 *
 * Environment: BENCH_REDIS_URL [redis://127.0.0.1:6379]. Loopback only; bounded (a fixed number of
 * events, each case stops at a deadline); every key lives under a random `bench:<id>:` prefix and
 * is deleted at the end.
 *
 * The partition logs are filled once with entries shaped like the real ones (k, o, e = a 134-byte
 * msgpack `assistant.delta`, h = 64 hex chars). Each case then runs a fresh consumer group from "0"
 * over all of them and measures from start() until every entry was handled and acknowledged:
 *   - noop: the handler does nothing (the runtime's own cost: XREADGROUP, parsing, XACK);
 *   - decode: the handler msgpack-decodes every event (what a projector does before its SQL).
 *   - raw: the least a consumer can do, for reference in the same run: per partition a tight loop of
 *     XREADGROUP COUNT 1000 + XACK through the same client, no runtime around it.
 * Reported: events/s (median of rounds), the ratio to raw, and Node CPU µs per event (a figure that
 * depends far less on how busy the machine is than the rate does).
 */
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { decodeEvent, encodeEvent } from "../core/codec.js";
import type { StreamMessage } from "../core/consumer.js";
import { keys } from "../core/keys.js";
import { StreamConsumer } from "../core/redis/consumer.js";
import { flag } from "./lib/args.js";

const EVENTS = Math.max(1000, Number(flag("--events") ?? 200_000));
const PARTITIONS = Math.max(1, Number(flag("--partitions") ?? 4));
const ROUNDS = Math.max(1, Number(flag("--rounds") ?? 2));
const JSON_OUT = flag("--json");
const DEADLINE_MS = 120_000;
const url = new URL(process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379");
if (!["127.0.0.1", "localhost", "::1", "[::1]"].includes(url.hostname)) {
  console.error(`bench: loopback only, got ${url.hostname}`);
  process.exit(2);
}
const prefix = `bench:${randomUUID().slice(0, 8)}:`;
const redis = new Redis(url.toString(), { keyPrefix: prefix, enableAutoPipelining: true });

async function fill(): Promise<void> {
  const chunk = 1000;
  for (let i = 0; i < EVENTS; i += chunk) {
    const pipe = redis.pipeline();
    for (let j = i; j < Math.min(EVENTS, i + chunk); j++) {
      const p = j % PARTITIONS;
      const e = encodeEvent({
        s: 1,
        type: "assistant.delta",
        version: j + 1,
        at: "2026-11-22T00:00:00.000Z",
        data: { messageId: "m_01JD3XK9Q7V6R5T4S3P2N1M0LK", index: j, text: " token" },
      });
      pipe.xadd(keys.log(p), "*", "k", `{p${p}}:es:conversation:c${j % 997}`, "o", `${1732212345678 + j}-0`, "e", e, "h", "ab".repeat(32));
    }
    await pipe.exec();
  }
}

interface Case {
  name: string;
  batch: number;
  decode: boolean;
  raw?: boolean;
}

/** Baseline: XREADGROUP + XACK loops, one per partition, no retries, no DLQ, no lag. */
async function runRaw(group: string): Promise<number> {
  const conns = Array.from({ length: PARTITIONS }, () => redis.duplicate());
  let n = 0;
  await Promise.all(
    conns.map(async (conn, p) => {
      await conn.call("XGROUP", "CREATE", keys.log(p), group, "0");
      for (;;) {
        const reply = (await conn.xreadgroupBuffer("GROUP", group, "raw", "COUNT", 1000, "STREAMS", keys.log(p), ">")) as
          | Array<[Buffer, Array<[Buffer, Buffer[]]>]>
          | null;
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length === 0) return;
        await redis.call("XACK", keys.log(p), group, ...entries.map(([id]) => id.toString()));
        n += entries.length;
      }
    }),
  );
  for (const c of conns) c.disconnect();
  return n;
}

interface Result {
  case: string;
  batch: number;
  eventsPerSec: number[];
  cpuUsPerEvent: number[];
}

async function runOnce(c: Case, round: number): Promise<{ eps: number; cpu: number }> {
  if (c.raw) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const n = await runRaw(`bench-raw-${round}`);
    const elapsed = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    return { eps: Math.round((n / elapsed) * 1000), cpu: (cpu.user + cpu.system) / n };
  }
  let handled = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((res) => (done = res));
  const handler = async (batch: StreamMessage[]) => {
    if (c.decode) for (const m of batch) decodeEvent(m.fields.e!);
    handled += batch.length;
  };
  const consumer = new StreamConsumer({
    redis,
    group: `bench-${c.name}-${round}`,
    consumer: "bench",
    partitions: () => Array.from({ length: PARTITIONS }, (_, i) => i),
    streamOf: keys.log,
    handler,
    maxDeliveries: 5,
    batchSize: c.batch,
    blockMs: 100,
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  consumer.start();
  const poll = setInterval(() => {
    if (consumer.counters().processed >= EVENTS) done();
  }, 2);
  const timeout = setTimeout(done, DEADLINE_MS);
  await finished;
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(poll);
  clearTimeout(timeout);
  await consumer.stop();
  const processed = consumer.counters().processed;
  if (processed < EVENTS) console.error(`${c.name}: only ${processed}/${EVENTS} within the deadline`);
  if (handled < processed) console.error(`${c.name}: handled ${handled} < acknowledged ${processed}`);
  return { eps: Math.round((processed / elapsed) * 1000), cpu: (cpu.user + cpu.system) / processed };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

async function main(): Promise<void> {
  const cases: Case[] = [
    { name: "raw-xreadgroup-xack", batch: 1000, decode: false, raw: true },
    { name: "noop-256", batch: 256, decode: false },
    { name: "noop-1000", batch: 1000, decode: false },
    { name: "noop-500", batch: 500, decode: false },
    { name: "decode-1000", batch: 1000, decode: true },
  ];
  const only = flag("--cases")?.split(",");
  const chosen = only ? cases.filter((c) => c.raw || only.includes(c.name)) : cases;
  const t = performance.now();
  await fill();
  console.error(`filled ${EVENTS} events over ${PARTITIONS} partitions in ${Math.round(performance.now() - t)} ms`);
  // Rounds outermost: every case runs once per round, so a burst of load on the shared machine hits
  // all cases alike rather than one case's every round.
  const results: Result[] = chosen.map((c) => ({ case: c.name, batch: c.batch, eventsPerSec: [], cpuUsPerEvent: [] }));
  for (let i = 0; i < ROUNDS; i++) {
    for (const [k, c] of chosen.entries()) {
      const { eps, cpu } = await runOnce(c, i);
      results[k]!.eventsPerSec.push(eps);
      results[k]!.cpuUsPerEvent.push(Math.round(cpu * 100) / 100);
    }
  }
  const rawEps = median(results.find((r) => r.case.startsWith("raw"))?.eventsPerSec ?? [1]) || 1;
  const lines = [
    `| case | batch | partitions | events | events/s (median) | per round | of raw | Node CPU µs/event |`,
    `|---|---:|---:|---:|---:|---|---:|---:|`,
    ...results.map(
      (r) =>
        `| ${r.case} | ${r.batch} | ${PARTITIONS} | ${EVENTS} | ${median(r.eventsPerSec)} | ${r.eventsPerSec.join(", ")} | ${Math.round((100 * median(r.eventsPerSec)) / rawEps)} % | ${median(r.cpuUsPerEvent)} |`,
    ),
  ];
  console.log(lines.join("\n"));
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ events: EVENTS, partitions: PARTITIONS, results }, null, 2));
}

try {
  await main();
} finally {
  // Delete only our keys: the streams of every partition (groups go with them).
  const raw = new Redis(url.toString());
  for (let p = 0; p < PARTITIONS; p++) await raw.del(`${prefix}${keys.log(p)}`, `${prefix}${keys.redrive(p, "x")}`);
  let cursor = "0";
  do {
    const [next, found] = await raw.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    for (const k of found) await raw.unlink(k);
  } while (cursor !== "0");
  raw.disconnect();
  redis.disconnect();
}
