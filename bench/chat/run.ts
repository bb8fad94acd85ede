import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { signToken } from "../../edge/auth/sign.js";
import { ClientPool } from "../clients/pool.js";
import type { ClientKind, WorkerSpec } from "../clients/protocol.js";
import { measure, toRunResult } from "../lib/measure.js";
import { deletePrefix } from "../lib/redis-cleanup.js";
import { newDeploymentEnv, removeDir, spawnServer, type SpawnedServer } from "../lib/spawn.js";
import type { BenchReport, RunResult } from "../report/types.js";
import { writeReport } from "../report/write.js";
import type { BenchOptions } from "./options.js";

/**
 * The chat workload of `tributary bench` (DESIGN §Bench): C clients over K conversations, one sender
 * per conversation posting messages at a fixed overall rate, simulated replies streamed back to every
 * client of the conversation. Optionally the same workload against the socket.io baseline.
 */
const BASELINE = fileURLToPath(new URL("../baseline/server.ts", import.meta.url));

interface Layout {
  conversationIds: string[];
  tokens: string[];
}

export interface ChatBenchResult {
  report: BenchReport;
  paths: { json: string; md: string; svg: string };
}

async function createConversations(baseUrl: string, o: BenchOptions, secret: string | undefined): Promise<Layout> {
  const tokens: string[] = [];
  for (let k = 0; k < o.conversations; k++) {
    // One user per conversation, privileged: per-user message limits must not throttle the bench.
    tokens.push(o.token ?? (await signToken({ sub: `bench-u${k}`, tid: "bench", tier: "privileged" }, { secret: secret as string, ttlSeconds: 3600 })));
  }
  const ids: string[] = new Array<string>(o.conversations);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < o.conversations) {
      const k = next++;
      const res = await fetch(`${baseUrl}/v1/conversations`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens[k]}`, "content-type": "application/json" },
        body: JSON.stringify({ title: `bench ${k}` }),
      });
      const body = (await res.json().catch(() => ({}))) as { id?: string; error?: { code?: string; message?: string } };
      if (res.status !== 201 || !body.id) throw new Error(`creating a conversation answered ${res.status} ${body.error?.code ?? ""} ${body.error?.message ?? ""}`);
      ids[k] = body.id;
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, o.conversations) }, lane));
  return { conversationIds: ids, tokens };
}

function clientDefs(o: BenchOptions, layout: Layout, kinds: ClientKind[]): Map<ClientKind, WorkerSpec["clients"]> {
  const out = new Map<ClientKind, WorkerSpec["clients"]>(kinds.map((k) => [k, []]));
  for (let i = 0; i < o.clients; i++) {
    const k = i % o.conversations;
    const kind = kinds[i % kinds.length] as ClientKind;
    out.get(kind)?.push({ conversationId: layout.conversationIds[k] as string, token: layout.tokens[k] as string, sender: i < o.conversations });
  }
  return out;
}

async function runOne(
  name: string,
  baseUrl: string,
  serverPid: number | undefined,
  o: BenchOptions,
  defs: Map<ClientKind, WorkerSpec["clients"]>,
  say: (s: string) => void,
): Promise<RunResult> {
  const pools: ClientPool[] = [];
  const kinds = [...defs.entries()].filter(([, c]) => c.length > 0);
  try {
    // Each sender posts every K / rate seconds, so the whole layout offers `rate` messages/s.
    const chat = { intervalMs: (1000 * o.conversations) / o.rate, ...(o.maxTokens ? { maxTokens: o.maxTokens } : {}) };
    for (const [kind, clients] of kinds) {
      const pool = new ClientPool();
      pools.push(pool);
      const workers = Math.max(1, Math.round((o.workers * clients.length) / o.clients));
      const r = await pool.start({ kind, baseUrl, clients, chat }, workers);
      say(`${name}: ${kind} clients connected ${r.connected}/${clients.length}${r.errors.length ? ` (${r.errors[0]})` : ""}`);
      if (r.connected === 0) throw new Error(`${name}: no ${kind} client could connect: ${r.errors[0] ?? "?"}`);
    }
    for (const p of pools) p.broadcast({ t: "chat", on: true });
    const m = await measure({
      pools,
      seconds: o.duration,
      serverPid,
      label: name,
      during: async () => {
        await new Promise((r) => setTimeout(r, o.duration * 1000));
        for (const p of pools) p.broadcast({ t: "chat", on: false });
      },
    });
    const transport = kinds.map(([k]) => (k === "sio" ? "socket.io-client" : k)).join("+");
    return toRunResult(m, { name, transport, clients: o.clients, conversations: o.conversations, offeredRate: o.rate, seconds: o.duration, expected: null, firstDelta: true });
  } finally {
    for (const p of pools) await p.stop();
  }
}

export async function runChatBench(o: BenchOptions, say: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): Promise<ChatBenchResult> {
  const report: BenchReport = {
    title: `tributary bench: ${o.clients} clients over ${o.conversations} conversations, ${o.rate} messages/s, ${o.duration} s`,
    startedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, loadAvg: loadavg(), node: process.version },
    options: { ...o, token: o.token ? "(given)" : undefined, tokenSecret: o.tokenSecret ? "(given)" : undefined },
    runs: [],
    ratios: {},
    notes: [],
  };
  const sim = { SIM_TOKENS_PER_SEC: String(o.simTokensPerSec), SIM_MAX_TOKENS: String(o.simMaxTokens) };
  const kinds: ClientKind[] = o.transport === "sse" ? ["sse"] : o.transport === "socketio" ? ["sio"] : ["sse", "sio"];
  const cleanups: Array<() => Promise<void>> = [];
  try {
    // --- Tributary -------------------------------------------------------------------------------
    let baseUrl = o.url.replace(/\/$/, "");
    let serverPid = o.serverPid;
    let secret = o.tokenSecret;
    if (o.spawn) {
      const dep = newDeploymentEnv({ REDIS_URL: o.redisUrl, ...sim });
      secret = dep.secret;
      say(`starting tributary (DATA_DIR ${dep.dataDir}, REDIS_KEY_PREFIX ${dep.prefix})`);
      const server: SpawnedServer = await spawnServer({ role: "start", env: dep.env, timeoutMs: 120_000 });
      cleanups.push(async () => {
        await server.stop();
        await deletePrefix(o.redisUrl, dep.prefix).catch(() => 0);
        removeDir(dep.dataDir);
      });
      baseUrl = server.url;
      serverPid = server.pid;
      report.notes.push(`tributary spawned by the bench (\`tributary start\`, pid ${server.pid}) with SIM_TOKENS_PER_SEC=${o.simTokensPerSec}, SIM_MAX_TOKENS=${o.simMaxTokens}; server CPU includes its worker, projector and archiver roles.`);
    }
    const layout = await createConversations(baseUrl, o, secret);
    const tributary = await runOne("tributary", baseUrl, serverPid, o, clientDefs(o, layout, kinds), say);
    report.runs.push(tributary);

    // --- Baseline --------------------------------------------------------------------------------
    if (o.baseline === "socketio") {
      const dep = newDeploymentEnv();
      const env: Record<string, string> = { BENCH_REDIS_URL: o.redisUrl, BENCH_PREFIX: dep.prefix, ...sim, ...(secret ? { AUTH_JWT_SECRET: secret } : {}) };
      say("starting the socket.io + @socket.io/redis-streams-adapter baseline");
      const server = await spawnServer({ script: BASELINE, args: ["--mode", "chat"], env, timeoutMs: 60_000 });
      cleanups.push(async () => {
        await server.stop();
        await deletePrefix(o.redisUrl, dep.prefix).catch(() => 0);
        removeDir(dep.dataDir);
      });
      // The baseline speaks Socket.IO only: every client uses the stock socket.io-client there.
      const base = await runOne("socket.io baseline", server.url, server.pid, o, clientDefs(o, layout, ["sio"]), say);
      report.runs.push(base);
      const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a != null && b != null && b > 0 ? a / b : null);
      report.ratios = {
        "delivered events/s: tributary / socket.io": ratio(tributary.deliveredPerSec, base.deliveredPerSec),
        "append→client p99: socket.io / tributary": ratio(base.appendToClient.p99, tributary.appendToClient.p99),
        "send→first delta p99: socket.io / tributary": ratio(base.sendToFirstDelta?.p99, tributary.sendToFirstDelta?.p99),
        "server CPU µs/delivery: tributary / socket.io": ratio(tributary.serverCpuMicrosPerDelivery, base.serverCpuMicrosPerDelivery),
      };
      if (o.transport !== "socketio") report.notes.push("the baseline has no SSE: there every client uses the stock socket.io-client.");
      if (o.spawn) report.notes.push("tributary's server CPU covers every role (edge, worker, projector, archiver); the baseline's covers one socket.io process that also simulates the replies.");
    }
    if (o.token) report.notes.push("all conversations belong to the one --token user: per-user rate limits and quotas apply to the whole bench.");
    const paths = writeReport(o.out, report);
    return { report, paths };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}
