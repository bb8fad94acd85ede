import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TributaryError } from "../../core/errors.js";
import { streamKeys, type StreamRef } from "../../core/keys.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { Envelope } from "../../core/envelope.js";
import { testDatabase, type TestDb } from "../support/postgres.js";
import { freePort, privateCluster, type PrivateCluster, type PrivateRedis } from "../support/private-services.js";
import { mintToken, TEST_JWT_SECRET } from "../support/tokens.js";
import { checkAccepted, checkFollower, checkStream, readAll } from "./check.js";
import { Follower, followSse, newStats, send, TERMINAL, type Accepted } from "./load.js";
import { cli, Role } from "./roles.js";

/**
 * Issue 7 §3: a private 3-master / 3-replica Redis Cluster on 127.0.0.1:7100-7105, and what each
 * DURABILITY setting can lose when a master dies.
 *
 * The replication lag that decides the loss is made explicit: the replica of the stream's master is
 * frozen (SIGSTOP) and cut off (CLIENT KILL TYPE replica on the master), appends are made, the master is SIGKILLed and the frozen replica, thawed, takes
 * over (CLUSTER FAILOVER TAKEOVER). Then what survives is compared with what was acknowledged:
 * - `local` acknowledges every append made while the replica lagged, and all of them are lost — the
 *   loss window of `local` is the replication lag at the moment the master dies;
 * - `wait-replica` acknowledges none of them (WAIT times out → UNAVAILABLE), and every append it did
 *   acknowledge survives the failover.
 * After each failover the killed master is started again and rejoins as a replica, and the store
 * carries on appending on the new master.
 */
const PARTITIONS = 4;
const BASE_PORT = Number(process.env.CHAOS_CLUSTER_PORT ?? 7100);

let cluster: PrivateCluster;
let client: Cluster;

function nodesTable(port: number): Array<{ id: string; port: number; master: string | null; flags: string; slots: string[] }> {
  const out = spawnSync("redis-cli", ["-p", String(port), "cluster", "nodes"], { encoding: "utf8" }).stdout;
  return out
    .trim()
    .split("\n")
    .map((l) => {
      const f = l.split(" ");
      return { id: f[0]!, port: Number(/:(\d+)@/.exec(f[1]!)?.[1]), flags: f[2]!, master: f[3] === "-" ? null : f[3]!, slots: f.slice(8) };
    });
}

function ownerOf(slot: number, askPort: number): { master: number; replica: number } {
  const table = nodesTable(askPort);
  const inRange = (s: string) => {
    const [a, b] = s.split("-").map(Number);
    return slot >= a! && slot <= (b ?? a)!;
  };
  const m = table.find((n) => n.flags.includes("master") && !n.flags.includes("fail") && n.slots.some(inRange));
  if (!m) throw new Error(`no master for slot ${slot}`);
  const r = table.find((n) => n.master === m.id && !n.flags.includes("fail"));
  if (!r) throw new Error(`no replica for master ${m.port}`);
  return { master: m.port, replica: r.port };
}

function replInfo(port: number): Record<string, string> {
  const out = spawnSync("redis-cli", ["-p", String(port), "info", "replication"], { encoding: "utf8" }).stdout;
  return Object.fromEntries(out.split(/\r?\n/).filter((l) => l.includes(":")).map((l) => l.split(":", 2) as [string, string]));
}

/** The replica's link is up and it has everything the master has written (the healthy baseline). */
function caughtUp(master: number, replica: number): boolean {
  const m = replInfo(master);
  const r = replInfo(replica);
  return r.master_link_status === "up" && Number(r.slave_repl_offset) >= Number(m.master_repl_offset);
}

const server = (port: number): PrivateRedis => cluster.servers[cluster.ports.indexOf(port)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const healthy = () => {
  const alive = cluster.servers.find((s) => s.running)!;
  const info = spawnSync("redis-cli", ["-p", String(alive.port), "cluster", "info"], { encoding: "utf8" }).stdout;
  const table = nodesTable(alive.port);
  const links = cluster.ports.every((p) => {
    const i = replInfo(p);
    return i.role !== "slave" || i.master_link_status === "up";
  });
  return links && info.includes("cluster_state:ok") && table.filter((n) => n.flags.includes("slave") && !n.flags.includes("fail")).length === 3 && table.every((n) => !n.flags.includes("fail"));
};

beforeAll(async () => {
  cluster = await privateCluster(BASE_PORT);
  client = new Cluster([{ host: "127.0.0.1", port: BASE_PORT }], { redisOptions: { maxRetriesPerRequest: 5 }, retryDelayOnClusterDown: 200, retryDelayOnFailover: 200 });
  client.on("error", () => undefined);
  await client.ping();
}, 120_000);

afterAll(async () => {
  client?.disconnect();
  await cluster?.cleanup();
});

/** One scenario: freeze the replica, append, kill the master, fail over to the stale replica. */
/** Environment of the role processes on the private cluster: wait-replica, the reply pace given. */
function roleEnv(db: TestDb, dataDir: string, pace: { SIM_TOKENS_PER_SEC: string; SIM_MAX_TOKENS: string }): Record<string, string> {
  return {
    REDIS_CLUSTER_NODES: cluster.nodes,
    DATABASE_URL: db.env.DATABASE_URL as string,
    DATA_DIR: dataDir,
    PARTITIONS: String(PARTITIONS),
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    DURABILITY: "wait-replica",
    ...pace,
    LOG_LEVEL: "warn",
    HOST: "127.0.0.1",
  };
}

async function lagThenKill(mode: "local" | "wait-replica", tag: string) {
  const store = createRedisEventStore(client, { partitions: PARTITIONS, idemTtlMs: 600_000, durability: mode, replicaTimeoutMs: 300 });
  const ref: StreamRef = { kind: "conversation", id: `chaos-${tag}-${Date.now()}` };
  const slot = Number(await client.cluster("KEYSLOT", streamKeys(ref, PARTITIONS).stream));
  const { master, replica } = ownerOf(slot, BASE_PORT);
  await until("the replica's link to be up", () => replInfo(replica).master_link_status === "up");
  const acked: number[] = [];
  const refused: number[] = [];
  const at = new Date().toISOString();
  const appendOne = async (v: number) => {
    try {
      await store.append(ref, v - 1, [{ type: "chaos.tick", at, data: { v } }], `cmd-${v}`);
      acked.push(v);
    } catch (e) {
      if (!(e instanceof TributaryError && e.code === "UNAVAILABLE")) throw e;
      refused.push(v);
    }
  };
  // Replicated while the replica is healthy.
  for (let v = 1; v <= 20; v++) await appendOne(v);
  expect(acked).toHaveLength(20);
  await until("the replica to catch up", () => caughtUp(master, replica));

  // The replica is frozen (SIGSTOP) and the master drops its replication link (CLIENT KILL), so
  // every later write exists on the master only. (SIGSTOP alone is not enough: what the master has
  // already sent waits in the replica's socket buffer and is applied on SIGCONT.)
  process.kill(server(replica).pid!, "SIGSTOP");
  spawnSync("redis-cli", ["-p", String(master), "client", "kill", "type", "replica"], { encoding: "utf8" });
  const lagged = mode === "local" ? 20 : 3;
  // After a refused append the head is still v-1 on the master as far as this writer knows: the
  // event is on the master, so the next version continues after it either way.
  for (let v = 21; v < 21 + lagged; v++) await appendOne(v);

  await server(master).kill();
  process.kill(server(replica).pid!, "SIGCONT");
  spawnSync("redis-cli", ["-p", String(replica), "cluster", "failover", "takeover"], { encoding: "utf8" });
  await until("the replica to own the slot", () => nodesTable(replica).some((n) => n.port === replica && n.flags.includes("master")));

  const fresh = createRedisEventStore(client, { partitions: PARTITIONS, idemTtlMs: 600_000 });
  let survived: number[] = [];
  await until("the stream to be readable on the new master", async () => {
    try {
      survived = (await fresh.read(ref)).map((e) => (e.data as { v: number }).v);
      return true;
    } catch {
      return false;
    }
  });

  // The old master comes back as a replica of the new one; the store carries on.
  await server(master).start();
  await until("the cluster to heal (3 replicas attached)", healthy, 90_000);
  const next = survived.length + 1;
  await createRedisEventStore(client, { partitions: PARTITIONS, idemTtlMs: 600_000, durability: mode }).append(ref, next - 1, [{ type: "chaos.tick", at, data: { v: next } }], `after-${next}`);
  const lostAcked = acked.filter((v) => !survived.includes(v));
  return { mode, acked: acked.length, refused: refused.length, survived: survived.length, lostAcked: lostAcked.length, carriedOnAt: next };
}

describe("Redis Cluster 3 masters / 3 replicas: DURABILITY under a master failover", () => {
  it("local: appends acknowledged while the replica lagged are lost with the master", async () => {
    const r = await lagThenKill("local", "local");
    console.log(`chaos cluster figures ${JSON.stringify(r)}`);
    expect(r.acked).toBe(40);
    // Exactly the lag window is lost: the 20 replicated appends survive, the 20 after the freeze do not.
    expect(r.survived).toBe(20);
    expect(r.lostAcked).toBe(20);
  });

  it("wait-replica: nothing acknowledged is lost; appends no replica confirmed are refused (UNAVAILABLE)", async () => {
    const r = await lagThenKill("wait-replica", "wait");
    console.log(`chaos cluster figures ${JSON.stringify(r)}`);
    expect(r.acked).toBe(20);
    expect(r.refused).toBe(3);
    expect(r.lostAcked).toBe(0);
    expect(r.survived).toBeGreaterThanOrEqual(20);
  });
});

/**
 * The system on the same private cluster, DURABILITY=wait-replica: edge, two workers and a projector
 * as processes, HTTP senders and SSE followers; the master owning the most partitions' slots is
 * SIGKILLed mid-load, its replica takes over by itself (no operator), the old master is started
 * again and rejoins as a replica. The system carries on (messages accepted after the failover), and
 * every accepted message has its events and one finished reply.
 */
describe("the system on the cluster: a master SIGKILLed under load (wait-replica)", () => {
  let db: TestDb | undefined;
  let dataDir: string | undefined;
  const roles: Role[] = [];
  const followers: Follower[] = [];
  afterAll(async () => {
    for (const f of followers) f.stop();
    await Promise.all(roles.map((r) => r.stop()));
    await db?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("fails over by itself and carries on; nothing acknowledged is lost", async () => {
    await until("a healthy cluster", healthy, 90_000);
    db = await testDatabase("pg");
    dataDir = mkdtempSync(join(tmpdir(), "trib-chaos-cluster-load-"));
    const env = roleEnv(db, dataDir, { SIM_TOKENS_PER_SEC: "100", SIM_MAX_TOKENS: "12" });
    const edge = new Role({ name: "edge", kind: "edge", port: await freePort() }, env);
    roles.push(edge, new Role({ name: "worker-a", kind: "worker" }, env), new Role({ name: "worker-b", kind: "worker" }, env), new Role({ name: "projector", kind: "projector" }, env));
    for (const r of roles) r.start();
    await edge.ready();
    const pick = () => edge.url;
    const convs: Array<{ id: string; token: string }> = [];
    for (let i = 0; i < 12; i++) {
      const token = await mintToken({ sub: `u-cl-${i}`, tid: "t-cluster", tier: "privileged" });
      // Retried with one Idempotency-Key: right after start-up the workers may not own every
      // partition yet (202/503); the key makes the retries one conversation.
      let res = new Response(null, { status: 599 });
      for (let a = 0; a < 20 && res.status !== 201; a++) {
        if (a > 0) await sleep(500);
        res = await fetch(`${pick()}/v1/conversations`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": `cl-${i}` }, body: "{}" });
      }
      expect(res.status, `${await res.clone().text()}\n${roles.map((r) => `${r.spec.name}: ${r.output.slice(-1500)}`).join("\n")}`).toBe(201);
      convs.push({ id: ((await res.json()) as { id: string }).id, token });
    }
    const stats = newStats();
    const accepted: Accepted[] = [];
    let stopping = false;
    const clients: Promise<void>[] = [];
    const senders = convs.map((c) => {
      const f = new Follower("sse", c.id);
      followers.push(f);
      clients.push(followSse(f, pick, c.token));
      return send({ conversationId: c.id, token: c.token, pick, watch: f, until: () => stopping, thinkMs: 200, accepted, stats });
    });
    await sleep(8000);

    // The master of partition 0's slot dies; cluster-node-timeout 1 s, the replica promotes itself.
    const slot = Number(await client.cluster("KEYSLOT", "{p0}:log"));
    const { master, replica } = ownerOf(slot, cluster.ports.find((p) => server(p).running)!);
    const acceptedAtKill = accepted.length;
    const killedAt = new Date().toISOString();
    await server(master).kill();
    await until("the replica to be promoted", () => nodesTable(replica).some((n) => n.port === replica && n.flags.includes("master")), 60_000);
    await sleep(5000);
    await server(master).start();
    await until("the cluster to heal", healthy, 90_000);
    await sleep(8000);
    stopping = true;
    await Promise.all(senders);
    expect(stats.unexpected, stats.unexpected.join("\n")).toEqual([]);
    expect(accepted.length).toBeGreaterThan(acceptedAtKill);

    const breaks: string[] = [];
    const logs = new Map<string, Envelope[]>();
    const drainUntil = Date.now() + 120_000;
    for (const c of convs) {
      const mine = accepted.filter((a) => a.conversationId === c.id);
      for (;;) {
        const evs = await readAll(pick(), c.id, c.token);
        const ended = new Set(evs.filter((e) => TERMINAL.has(e.type)).map((e) => (e.data as { messageId: string }).messageId));
        if (mine.every((a) => ended.has(a.replyId)) || Date.now() > drainUntil) {
          logs.set(c.id, evs);
          break;
        }
        await sleep(500);
      }
    }
    const followUntil = Date.now() + 60_000;
    for (const f of followers) while (f.lastVersion < logs.get(f.conversationId)!.length && Date.now() < followUntil) await f.changed(500);
    for (const f of followers) f.stop();
    await Promise.all(clients);
    let events = 0;
    for (const c of convs) {
      const evs = logs.get(c.id)!;
      events += evs.length;
      breaks.push(...checkStream(c.id, evs), ...checkAccepted(evs, accepted.filter((a) => a.conversationId === c.id)));
    }
    for (const f of followers) breaks.push(...checkFollower(f, logs.get(f.conversationId)!));
    const audit = cli(["audit", "verify", "--all"], env);
    if (audit.status !== 0) breaks.push(`audit verify --all exit ${audit.status}: ${audit.out.slice(-2000)}`);
    const status = cli(["projections", "status"], env);
    console.log(`chaos cluster-load figures ${JSON.stringify({ killedMaster: master, killedAt, promoted: replica, acceptedAtKill, accepted: accepted.length, eventsChecked: events, followerEventsChecked: followers.reduce((s, f) => s + f.versions.length, 0), unavailable: stats.unavailable, retries: stats.retries, networkErrors: stats.networkErrors })}\n${status.out}`);
    expect(breaks, breaks.slice(0, 30).join("\n")).toEqual([]);
  });
});

/**
 * Defect 11 (docs/reliability.md) made deterministic: with DURABILITY=wait-replica, the replica of a
 * conversation's shard is frozen and cut off, so no append to that shard can be confirmed by a
 * replica; a client POSTs one message and retries it with the same clientMessageId (as a client
 * must after a 503). Then the master dies and the stale replica takes over. Whatever the edge
 * answered 200/201 must be in the log afterwards — `wait-replica` acknowledges nothing a replica
 * does not have. A repeat answered from the actor's state (read off the master, where the first
 * attempt's event sits unreplicated) would break exactly this. Opt-in: CHAOS_CLUSTER_LAG=1.
 */
describe("wait-replica under a lagging replica: a retried message is acknowledged only once a replica has it", () => {
  let db: TestDb | undefined;
  let dataDir: string | undefined;
  const roles: Role[] = [];
  afterAll(async () => {
    for (const s of cluster?.servers ?? []) if (s.running && s.pid) process.kill(s.pid, "SIGCONT");
    await Promise.all(roles.map((r) => r.stop()));
    await db?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  // Opt-in (CHAOS_CLUSTER_LAG=1): about a minute. It never reproduced defect 11 (fixed since by the
  // worker's durability barrier): with the replica frozen for the whole exchange the first command
  // never finishes, every attempt answers 202 and nothing is acknowledged (correct).
  it.runIf(process.env.CHAOS_CLUSTER_LAG === "1")("no 200/201 for a message the failover then loses", async () => {
    await until("a healthy cluster", healthy, 90_000);
    db = await testDatabase("pg");
    dataDir = mkdtempSync(join(tmpdir(), "trib-chaos-cluster-lag-"));
    const env = roleEnv(db, dataDir, { SIM_TOKENS_PER_SEC: "200", SIM_MAX_TOKENS: "4" });
    const edge = new Role({ name: "edge", kind: "edge", port: await freePort() }, env);
    roles.push(edge, new Role({ name: "worker", kind: "worker" }, env));
    for (const r of roles) r.start();
    await edge.ready();
    const token = await mintToken({ sub: "u-lag", tid: "t-lag", tier: "privileged" });
    let res = new Response(null, { status: 599 });
    for (let a = 0; a < 40 && res.status !== 201; a++) {
      if (a > 0) await sleep(500);
      res = await fetch(`${edge.url}/v1/conversations`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": "lag" }, body: "{}" });
    }
    expect(res.status, await res.clone().text()).toBe(201);
    const id = ((await res.json()) as { id: string }).id;

    const slot = Number(await client.cluster("KEYSLOT", streamKeys({ kind: "conversation", id }, PARTITIONS).stream));
    const { master, replica } = ownerOf(slot, cluster.ports.find((p) => server(p).running)!);
    await until("the replica to catch up", () => caughtUp(master, replica));
    process.kill(server(replica).pid!, "SIGSTOP");
    spawnSync("redis-cli", ["-p", String(master), "client", "kill", "type", "replica"], { encoding: "utf8" });

    // One message, retried with the same clientMessageId after anything but an acceptance.
    const answers: Array<{ status: number; body: string }> = [];
    for (let a = 0; a < 6; a++) {
      const r = await fetch(`${edge.url}/v1/conversations/${id}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ text: "hello while the replica lags", clientMessageId: "lag-1" }),
        signal: AbortSignal.timeout(20_000),
      }).catch(() => undefined);
      answers.push({ status: r?.status ?? 0, body: r ? (await r.text()).slice(0, 300) : "no answer" });
      if (r && (r.status === 200 || r.status === 201)) break;
      await sleep(1000);
    }

    await server(master).kill();
    process.kill(server(replica).pid!, "SIGCONT");
    spawnSync("redis-cli", ["-p", String(replica), "cluster", "failover", "takeover"], { encoding: "utf8" });
    await until("the replica to own the slot", () => nodesTable(replica).some((n) => n.port === replica && n.flags.includes("master")));
    await server(master).start();
    await until("the cluster to heal", healthy, 90_000);

    let evs: Envelope[] = [];
    await until("the log to be readable", async () => {
      try {
        evs = await readAll(edge.url, id, token);
        return true;
      } catch {
        return false;
      }
    });
    const acceptedAnswer = answers.find((a) => a.status === 200 || a.status === 201);
    const messageId = acceptedAnswer ? (JSON.parse(acceptedAnswer.body) as { messageId?: string }).messageId : undefined;
    const received = evs.filter((e) => e.type === "message.received" && (e.data as { messageId: string }).messageId === messageId).length;
    console.log(`chaos cluster-lag figures ${JSON.stringify({ master, replica, answers: answers.map((a) => a.status), messageInLog: received })}`);
    if (acceptedAnswer) expect(received, `answers ${JSON.stringify(answers)}; log types ${evs.map((e) => e.type).join(",")}`).toBe(1);
  });
});
