import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, privatePostgres, privateRedis, type PrivatePostgres, type PrivateRedis } from "../support/private-services.js";
import { mintToken, TEST_JWT_SECRET } from "../support/tokens.js";
import { checkAccepted, checkFollower, checkStream, readAll } from "./check.js";
import { Follower, followSse, newStats, send, TERMINAL, type Accepted } from "./load.js";
import { cli, Role } from "./roles.js";

/**
 * Issue 7 §2: dependency faults under load. A private redis-server (AOF, appendfsync always) is
 * SIGKILLed and started again mid-load, then a private Postgres is stopped (immediate mode) and
 * started again. While a dependency is down the edge answers 503 UNAVAILABLE — every probe gets an
 * answer (a hang would trip the probe's own abort and fail the test); afterwards the system recovers
 * with no one's help, and nothing acknowledged is lost: every 201'd message has its events and a
 * finished reply, followers saw every event once, the read model catches up, audit and reconcile pass.
 *
 * CHAOS_DEP_DOWN_MS sets how long each dependency stays down [3000].
 */
const DOWN_MS = Number(process.env.CHAOS_DEP_DOWN_MS ?? 3000);
const CONVERSATIONS = Number(process.env.CHAOS_CONVERSATIONS ?? 12);
const PARTITIONS = 4;
const TENANT = "t-chaos-deps";
const HANG_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("chaos: Redis and Postgres restarted under load", () => {
  let redis: PrivateRedis;
  let pgsrv: PrivatePostgres;
  let dataDir: string;
  let env: Record<string, string>;
  const roles: Role[] = [];
  const followers: Follower[] = [];

  beforeAll(async () => {
    redis = await privateRedis();
    pgsrv = await privatePostgres();
    dataDir = mkdtempSync(join(tmpdir(), "trib-chaos-deps-"));
    env = {
      REDIS_URL: redis.url,
      DATABASE_URL: pgsrv.url,
      DATA_DIR: dataDir,
      PARTITIONS: String(PARTITIONS),
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      SIM_TOKENS_PER_SEC: "100",
      SIM_MAX_TOKENS: "12",
      LOG_LEVEL: "warn",
      HOST: "127.0.0.1",
    };
    const migrated = cli(["migrate"], env);
    expect(migrated.status, migrated.out).toBe(0);
    roles.push(new Role({ name: "edge", kind: "edge", port: await freePort() }, env));
    roles.push(new Role({ name: "worker", kind: "worker" }, env), new Role({ name: "projector", kind: "projector" }, env));
    for (const r of roles) r.start();
    await roles[0]!.ready();
  });

  afterAll(async () => {
    for (const f of followers) f.stop();
    await Promise.all(roles.map((r) => r.stop()));
    await redis?.cleanup();
    pgsrv?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("503 while a dependency is down, recovery by itself, nothing acknowledged lost", async () => {
    const edge = roles[0]!;
    const pick = () => edge.url;
    const convs: Array<{ id: string; token: string }> = [];
    for (let i = 0; i < CONVERSATIONS; i++) {
      const token = await mintToken({ sub: `u-deps-${i}`, tid: TENANT, tier: "privileged" });
      const res = await fetch(`${pick()}/v1/conversations`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ title: `deps ${i}` }),
      });
      expect(res.status).toBe(201);
      convs.push({ id: ((await res.json()) as { id: string }).id, token });
    }
    const stats = newStats();
    const accepted: Accepted[] = [];
    let stopping = false;
    const clients: Promise<void>[] = [];
    const senders: Promise<void>[] = [];
    for (const c of convs) {
      const sse = new Follower("sse", c.id);
      followers.push(sse);
      clients.push(followSse(sse, pick, c.token));
      senders.push(send({ conversationId: c.id, token: c.token, pick, watch: sse, until: () => stopping, thinkMs: 200, accepted, stats }));
    }

    // Requests while a dependency is down: each must be answered (never hang) with 503 UNAVAILABLE.
    const probe = async (path: string, token: string, body?: unknown) => {
      const t0 = performance.now();
      const res = await fetch(`${pick()}${path}`, {
        method: body ? "POST" : "GET",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(HANG_MS),
      });
      const json = (await res.json()) as { error?: { code: string } };
      return { status: res.status, code: json.error?.code, ms: performance.now() - t0 };
    };
    // Answers other than 503 UNAVAILABLE while a dependency is down: collected, asserted at the end
    // with everything else, so one run names every break.
    const probeBreaks: string[] = [];
    const figures = { redisDownProbes: 0, pgDownProbes: 0, slowestProbeMs: 0, acceptedBeforeFaults: 0 };
    const c0 = convs[0]!;

    await sleep(6000);
    figures.acceptedBeforeFaults = accepted.length;
    expect(accepted.length).toBeGreaterThan(0);

    // Redis: SIGKILL. AOF with appendfsync always keeps every write Redis acknowledged.
    await redis.kill();
    const redisDownUntil = Date.now() + DOWN_MS;
    await sleep(300);
    while (Date.now() < redisDownUntil) {
      for (const p of [await probe("/v1/quota", c0.token), await probe(`/v1/conversations/${c0.id}/messages`, c0.token, { text: "while redis is down", clientMessageId: `down-${Date.now()}` })]) {
        if (p.status !== 503 || p.code !== "UNAVAILABLE") probeBreaks.push(`redis down: ${p.status} ${p.code}`);
        figures.redisDownProbes++;
        figures.slowestProbeMs = Math.max(figures.slowestProbeMs, p.ms);
      }
      await sleep(200);
    }
    const readyDown = await fetch(`${pick()}/readyz`);
    expect(readyDown.status).toBe(503);
    await redis.start();
    for (let i = 0; (await fetch(`${pick()}/readyz`)).status !== 200; i++) {
      if (i > 300) throw new Error("edge never became ready after the Redis restart");
      await sleep(200);
    }
    const acceptedAtRedisBack = accepted.length;
    await sleep(6000);

    // Postgres: immediate stop (no shutdown checkpoint), then start.
    pgsrv.stop();
    const pgDownUntil = Date.now() + DOWN_MS;
    await sleep(300);
    while (Date.now() < pgDownUntil) {
      const p = await probe("/v1/conversations", c0.token);
      if (p.status !== 503 || p.code !== "UNAVAILABLE") probeBreaks.push(`postgres down: ${p.status} ${p.code}`);
      figures.pgDownProbes++;
      figures.slowestProbeMs = Math.max(figures.slowestProbeMs, p.ms);
      await sleep(200);
    }
    pgsrv.start();
    for (let i = 0; (await fetch(`${pick()}/readyz`)).status !== 200; i++) {
      if (i > 300) throw new Error("edge never became ready after the Postgres restart");
      await sleep(200);
    }
    await sleep(6000);
    stopping = true;
    await Promise.all(senders);
    expect(stats.unexpected, stats.unexpected.join("\n")).toEqual([]);
    // Load went on after the Redis restart (the workers reconnected by themselves).
    expect(accepted.length).toBeGreaterThan(acceptedAtRedisBack);

    const logs = new Map<string, Awaited<ReturnType<typeof readAll>>>();
    const drainUntil = Date.now() + 120_000;
    for (const c of convs) {
      const mine = accepted.filter((a) => a.conversationId === c.id);
      for (;;) {
        const evs = await readAll(pick(), c.id, c.token);
        const ended = new Set(evs.filter((e) => TERMINAL.has(e.type)).map((e) => (e.data as { messageId: string }).messageId));
        const started = evs.filter((e) => e.type === "assistant.started").length;
        if ((mine.every((a) => ended.has(a.replyId)) && ended.size === started) || Date.now() > drainUntil) {
          logs.set(c.id, evs);
          break;
        }
        await sleep(500);
      }
    }
    const followUntil = Date.now() + 60_000;
    for (const f of followers) {
      const n = logs.get(f.conversationId)!.length;
      while (f.lastVersion < n && Date.now() < followUntil) await f.changed(500);
    }
    for (const f of followers) f.stop();
    await Promise.all(clients);

    const breaks: string[] = [];
    let events = 0;
    for (const c of convs) {
      const evs = logs.get(c.id)!;
      events += evs.length;
      breaks.push(...checkStream(c.id, evs), ...checkAccepted(evs, accepted.filter((a) => a.conversationId === c.id)));
    }
    for (const f of followers) breaks.push(...checkFollower(f, logs.get(f.conversationId)!));
    const readUntil = Date.now() + 120_000;
    for (const c of convs) {
      const replies = new Set(accepted.filter((a) => a.conversationId === c.id).map((a) => a.replyId));
      for (;;) {
        const res = await fetch(`${pick()}/v1/conversations/${c.id}`, { headers: { authorization: `Bearer ${c.token}` } });
        const body = (await res.json()) as { messages?: Array<{ id: string; role: string; status: string }> };
        const done = new Set((body.messages ?? []).filter((m) => m.role === "assistant" && m.status !== "streaming").map((m) => m.id));
        if ([...replies].every((r) => done.has(r))) break;
        if (Date.now() > readUntil) {
          const status = cli(["projections", "status"], env);
          breaks.push(`read model of ${c.id} never caught up\n${status.out}\nprojector: ${roles[2]!.output.slice(-3000)}`);
          break;
        }
        await sleep(500);
      }
    }
    const audit = cli(["audit", "verify", "--all"], env);
    if (audit.status !== 0) breaks.push(`audit verify --all exit ${audit.status}: ${audit.out}`);
    const reconcile = cli(["reconcile"], env);
    if (reconcile.status !== 0) breaks.push(`reconcile exit ${reconcile.status}: ${reconcile.out}`);

    const out = { ...figures, probeBreaks: probeBreaks.length, slowestProbeMs: Math.round(figures.slowestProbeMs), downMs: DOWN_MS, conversations: CONVERSATIONS, eventsChecked: events, followerEventsChecked: followers.reduce((s, f) => s + f.versions.length, 0), followersResumed: followers.filter((f) => f.resumes > 0).length, ...stats, unexpected: stats.unexpected.length, resumes: followers.reduce((s, f) => s + f.resumes, 0) };
    console.log(`chaos deps figures ${JSON.stringify(out)}`);
    breaks.push(...probeBreaks);
    expect(breaks, breaks.slice(0, 30).join("\n")).toEqual([]);
  });
});
