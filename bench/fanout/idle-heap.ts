/**
 * Where an idle connection's memory goes in Tributary's edge: two V8 heap snapshots of a real
 * `tributary edge` process, one with `--base` idle clients and one after `--more` further ones,
 * diffed by (node type, constructor name) and divided by `--more`. The RSS slope that
 * bench/fanout/run.ts --idle reports says how much; this says what.
 *
 *   npx tsx bench/fanout/idle-heap.ts --transport sio|sse [--base 500] [--more 2000] [--top 25]
 *
 * Environment: BENCH_REDIS_URL [redis://127.0.0.1:6379]; keys under a random `bench:<hex>:` prefix,
 * deleted at the end. Loopback only; bounded (two snapshots, each written by the edge on SIGUSR2).
 */
import { fork } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { signToken } from "../../edge/auth/sign.js";
import { ClientPool } from "../clients/pool.js";
import { deletePrefix } from "../lib/redis-cleanup.js";
import { newDeploymentEnv, removeDir, spawnServer } from "../lib/spawn.js";
import type { FromAppender, ToAppender } from "./appender.js";
import { stringFlag } from "../lib/args.js";

const TRANSPORT = stringFlag("--transport", "sio");
if (TRANSPORT !== "sio" && TRANSPORT !== "sse") throw new Error("--transport sio|sse");
const BASE = Math.min(5000, Number(stringFlag("--base", "500")));
const MORE = Math.min(10_000, Number(stringFlag("--more", "2000")));
const TOP = Number(stringFlag("--top", "25"));
const CONVERSATIONS = 100;
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
if (!/^redis:\/\/(127\.|localhost)/.test(REDIS_URL)) throw new Error("BENCH_REDIS_URL must be a loopback Redis");
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Self size and count per "type:name" of a .heapsnapshot file. */
function summarise(file: string): Map<string, { size: number; count: number }> {
  const snap = JSON.parse(readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = [f.indexOf("type"), f.indexOf("name"), f.indexOf("self_size")];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += f.length) {
    const type = types[snap.nodes[i + iType] as number] ?? "?";
    let name = snap.strings[snap.nodes[i + iName] as number] ?? "?";
    // Strings and code are many distinct names: group them by type.
    if (type === "string" || type === "concatenated string" || type === "sliced string" || type === "code" || type === "number") name = "";
    if (name.length > 60) name = `${name.slice(0, 60)}…`;
    const k = `${type}:${name}`;
    const e = out.get(k) ?? { size: 0, count: 0 };
    e.size += snap.nodes[i + iSize] as number;
    e.count++;
    out.set(k, e);
  }
  return out;
}

async function main(): Promise<void> {
  const deployment = newDeploymentEnv({ REDIS_URL, PARTITIONS: "16" });
  const snapDir = deployment.dataDir;
  const server = await spawnServer({
    role: "edge",
    env: { ...deployment.env, DATA_DIR: join(deployment.dataDir, "data") },
    nodeArgs: ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${snapDir}`],
    timeoutMs: 120_000,
  });
  const appender = fork(here("./appender.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const pools: ClientPool[] = [];
  try {
    const owner = "bench-owner";
    const ids = Array.from({ length: CONVERSATIONS }, (_, i) => `idle-${deployment.prefix.slice(6, 14)}-${i}`);
    await new Promise<void>((resolve, reject) => {
      appender.on("message", (m: FromAppender) => (m.t === "ready" ? resolve() : reject(new Error(m.t === "done" ? (m.error ?? "appender failed") : "?"))));
      appender.send({ t: "init", redisUrl: REDIS_URL, prefix: deployment.prefix, partitions: 16, conversationIds: ids, ownerId: owner, tenantId: "bench" } satisfies ToAppender);
    });
    const token = await signToken({ sub: owner, tid: "bench", tier: "privileged" }, { secret: deployment.secret, ttlSeconds: 7200 });
    const spec = (n: number, offset: number) => ({
      kind: TRANSPORT === "sio" ? ("sio-ws" as const) : ("sse" as const),
      baseUrl: server.url,
      connectConcurrency: 128,
      clients: Array.from({ length: n }, (_, i) => ({ conversationId: ids[(i + offset) % CONVERSATIONS] as string, token, sender: false })),
    });
    const snapshot = async (): Promise<string> => {
      const before = new Set(readdirSync(snapDir));
      server.child.kill("SIGUSR2");
      for (let i = 0; i < 600; i++) {
        await settle(500);
        const fresh = readdirSync(snapDir).filter((f) => f.endsWith(".heapsnapshot") && !before.has(f));
        // Written when the size stops changing.
        if (fresh[0]) {
          const p = join(snapDir, fresh[0]);
          let last = -1;
          for (;;) {
            const size = readFileSync(p).length;
            if (size === last && size > 0) return p;
            last = size;
            await settle(1000);
          }
        }
      }
      throw new Error("no heap snapshot");
    };
    const first = new ClientPool();
    pools.push(first);
    const r1 = await first.start(spec(BASE, 0), 1);
    await settle(3000);
    const s1 = await snapshot();
    const second = new ClientPool();
    pools.push(second);
    const r2 = await second.start(spec(MORE, BASE), 2);
    await settle(3000);
    const s2 = await snapshot();
    const a = summarise(s1);
    const b = summarise(s2);
    rmSync(s1);
    rmSync(s2);
    const rows: Array<[string, number, number]> = [];
    let total = 0;
    for (const [k, v] of b) {
      const o = a.get(k) ?? { size: 0, count: 0 };
      const d = v.size - o.size;
      total += d;
      rows.push([k, d / r2.connected, (v.count - o.count) / r2.connected]);
    }
    rows.sort((x, y) => y[1] - x[1]);
    process.stdout.write(`${TRANSPORT}: ${r1.connected} + ${r2.connected} idle connections; JS heap added per connection: ${(total / r2.connected).toFixed(0)} bytes\n\n`);
    process.stdout.write("| bytes/conn | objects/conn | type:constructor |\n|---:|---:|---|\n");
    for (const [k, bytes, count] of rows.slice(0, TOP)) process.stdout.write(`| ${bytes.toFixed(0)} | ${count.toFixed(2)} | ${k} |\n`);
  } finally {
    for (const p of pools) await p.stop();
    appender.kill();
    await server.stop();
    await deletePrefix(REDIS_URL, deployment.prefix).catch(() => 0);
    removeDir(deployment.dataDir);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`idle-heap failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
