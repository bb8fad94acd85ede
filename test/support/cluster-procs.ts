import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keys } from "../../core/keys.js";
import { testDatabase, type TestDb } from "./postgres.js";
import { testRedis, type RedisMode, type TestRedis } from "./redis.js";
import { TEST_JWT_SECRET } from "./tokens.js";

/**
 * A scaled-out Tributary made of real `tributary` processes, for end-to-end tests: N edge nodes,
 * N workers and N projectors on one Redis (single or the 3-master cluster) under a random
 * REDIS_KEY_PREFIX, a fresh Postgres database, one shared DATA_DIR (file blob store) and the test
 * JWT secret. Edges listen on port 0 and report their URL on stderr.
 *
 *   const d = await startDeployment({ mode: "cluster", edges: 2, workers: 2, projectors: 1 });
 *   afterAll(() => d.stop());     // kills every process, drops the database, deletes the keys
 *   d.edges[0].url …
 *
 * `stop()` is safe after a failed start (it stops whatever was started) and never throws.
 */
const BIN = join(import.meta.dirname, "../../edge/cli/bin.mjs");

export interface DeploymentOptions {
  mode: RedisMode;
  edges: number;
  workers: number;
  projectors: number;
  partitions?: number;
  /** Extra environment for every process (SIM_TOKENS_PER_SEC, …). */
  env?: Record<string, string>;
}

export interface Proc {
  role: string;
  child: ChildProcess;
  /** The process's stderr so far (start-up errors, warnings). */
  stderr(): string;
}

export interface EdgeProc extends Proc {
  url: string;
}

export interface Deployment {
  redis: TestRedis;
  db: TestDb;
  partitions: number;
  env: Record<string, string>;
  edges: EdgeProc[];
  workers: Proc[];
  projectors: Proc[];
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const debug = (m: string) => process.env.E2E_DEBUG && console.log(`[deployment +${Date.now() - t0} ms] ${m}`);

function spawnRole(role: string, env: Record<string, string>, all: Proc[]): Proc {
  const child = spawn(process.execPath, [BIN, role], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (process.env.E2E_DEBUG) process.stdout.write(`[${role} ${child.pid}] ${d.toString()}`);
    // Bounded: only the start-up line and recent warnings matter.
    err = (err + d.toString()).slice(-20_000);
  });
  const p: Proc = { role, child, stderr: () => err };
  all.push(p);
  // If the test runner itself goes away before stop(), no process outlives it.
  const orphanGuard = () => child.kill("SIGKILL");
  process.once("exit", orphanGuard);
  child.once("exit", () => process.off("exit", orphanGuard));
  return p;
}

function edgeUrl(p: Proc, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`edge did not start within ${timeoutMs} ms: ${p.stderr()}`)), timeoutMs);
    const look = () => {
      const m = /listening on (http:\/\/\S+)/.exec(p.stderr());
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    p.child.stderr?.on("data", look);
    p.child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`edge exited with ${code}: ${p.stderr()}`));
    });
    look();
  });
}

/**
 * SIGTERM, then SIGKILL if it has not exited after `graceMs`. A worker takes about 5 s to stop (its
 * blocking command read ends first), so the grace is longer than that: processes stop cleanly.
 */
async function kill(p: Proc, graceMs = 10_000): Promise<void> {
  const c = p.child;
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once("exit", () => r()));
  c.kill("SIGTERM");
  const timer = setTimeout(() => c.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
  debug(`${p.role} ${c.pid} exited (${c.signalCode ?? c.exitCode})`);
}

/** Wait until every one of `procs` holds at least one `role` lease (the partitions are shared out). */
export async function leasesSharedOut(d: Deployment, role: "actors" | "projector", procs: Proc[], timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const owners = await Promise.all(Array.from({ length: d.partitions }, (_, p) => d.redis.client.get(keys.lease(p, role))));
    // "<host>-<pid>|<token>" (workers) or "<host>-<pid>-<random>|<token>" (projectors).
    const pids = new Set(owners.map((o) => /-(\d+)(?:-[0-9a-f]{8})?\|/.exec(o ?? "")?.[1]));
    if (procs.every((p) => pids.has(String(p.child.pid)))) return;
    for (const p of procs) if (p.child.exitCode !== null) throw new Error(`${p.role} exited: ${p.stderr()}`);
    if (Date.now() > until) throw new Error(`${role} leases not shared out: ${owners.join(", ")}`);
    await sleep(100);
  }
}

export async function startDeployment(o: DeploymentOptions): Promise<Deployment> {
  const partitions = o.partitions ?? 4;
  const redis = await testRedis(o.mode);
  const all: Proc[] = [];
  let db: TestDb | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-e2e-"));
  const stop = async () => {
    debug("stopping");
    await Promise.all(all.map((p) => kill(p)));
    debug("processes stopped");
    await db?.cleanup().catch(() => undefined);
    await redis.cleanup().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    db = await testDatabase("pg");
    const env: Record<string, string> = {
      ...redis.env,
      ...db.env,
      REDIS_KEY_PREFIX: redis.prefix,
      DATA_DIR: dataDir,
      PARTITIONS: String(partitions),
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      HOST: "127.0.0.1",
      PORT: "0",
      LOG_LEVEL: "warn",
      ...(o.env ?? {}),
    };
    const edges = Array.from({ length: o.edges }, () => spawnRole("edge", env, all));
    const workers = Array.from({ length: o.workers }, () => spawnRole("worker", env, all));
    const projectors = Array.from({ length: o.projectors }, () => spawnRole("projector", env, all));
    const urls = await Promise.all(edges.map((e) => edgeUrl(e, 60_000)));
    debug("edges listening");
    const d: Deployment = {
      redis,
      db,
      partitions,
      env,
      edges: edges.map((e, i) => ({ ...e, url: urls[i] as string })),
      workers,
      projectors,
      stop,
    };
    await leasesSharedOut(d, "actors", workers);
    await leasesSharedOut(d, "projector", projectors);
    debug("leases shared out");
    return d;
  } catch (e) {
    await stop();
    throw e;
  }
}
