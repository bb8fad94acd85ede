import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Servers of our own for tests that stop and restart a dependency (test/chaos/): the shared services
 * (Redis 6379, Postgres 5432, cluster 7000-7002) are used by other engineers' tests and must never be
 * stopped, so a restart test starts its own redis-server / postgres on a free loopback port, in a temp
 * directory it removes afterwards. Every server here is a child of the test process and is killed by
 * its pid, never by name.
 */

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** True once something accepts connections on the port (probe by trying to listen on it). */
async function portTaken(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(true));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(false)));
  });
}

async function waitUntil(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once("exit", () => r()));
}

export interface PrivateRedis {
  port: number;
  url: string;
  dir: string;
  /** SIGKILL: what AOF (appendfsync always) had written survives, nothing else is flushed. */
  kill(): Promise<void>;
  start(): Promise<void>;
  readonly running: boolean;
  /** The server's pid while running (SIGSTOP / SIGCONT to freeze a replica). */
  readonly pid: number | undefined;
  cleanup(): Promise<void>;
}

/**
 * A redis-server with AOF on a free port. `appendfsync always` makes every acknowledged write reach
 * the file before the reply, so a SIGKILL + restart models a crash of a durably configured Redis;
 * extra arguments (e.g. cluster options) are appended.
 */
export async function privateRedis(opts: { port?: number; dir?: string; args?: string[] } = {}): Promise<PrivateRedis> {
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "trib-chaos-redis-"));
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir, ...(opts.args ?? [])],
      { stdio: "ignore" },
    );
    const p = proc;
    await waitUntil(`redis-server on ${port}`, async () => {
      if (p.exitCode !== null) throw new Error(`redis-server on ${port} exited with ${p.exitCode}`);
      return portTaken(port);
    });
  };
  const kill = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = exited(p);
    p.kill("SIGKILL");
    await done;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    kill,
    start,
    get running() {
      return proc !== undefined;
    },
    get pid() {
      return proc?.pid;
    },
    async cleanup() {
      await kill();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivateCluster {
  ports: number[];
  nodes: string;
  servers: PrivateRedis[];
  cleanup(): Promise<void>;
}

/**
 * A Redis Cluster of `masters` masters with one replica each on consecutive loopback ports from
 * `basePort` (the 3/3 on 7100-7105), node timeout short so a failover happens within seconds.
 * AOF without fsync-always: the cluster tests are about what replication keeps, not the disk.
 */
export async function privateCluster(basePort = 7100, masters = 3): Promise<PrivateCluster> {
  const ports = Array.from({ length: masters * 2 }, (_, i) => basePort + i);
  for (const p of ports) if (await portTaken(p)) throw new Error(`port ${p} is in use: another private cluster running?`);
  const root = mkdtempSync(join(tmpdir(), "trib-chaos-cluster-"));
  const servers: PrivateRedis[] = [];
  for (const p of ports) {
    const dir = join(root, String(p));
    rmSync(dir, { recursive: true, force: true });
    spawnSync("mkdir", ["-p", dir]);
    servers.push(
      await privateRedis({
        port: p,
        dir,
        args: ["--cluster-enabled", "yes", "--cluster-config-file", join(dir, "nodes.conf"), "--cluster-node-timeout", "1000", "--appendfsync", "everysec"],
      }),
    );
  }
  const create = spawnSync("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "1", "--cluster-yes"], { encoding: "utf8" });
  if (create.status !== 0) throw new Error(`cluster create failed: ${create.stdout}${create.stderr}`);
  await waitUntil("cluster ok with every replica attached", () => {
    const info = spawnSync("redis-cli", ["-p", String(ports[0]), "cluster", "info"], { encoding: "utf8" }).stdout;
    const nodes = spawnSync("redis-cli", ["-p", String(ports[0]), "cluster", "nodes"], { encoding: "utf8" }).stdout;
    const slaves = nodes.split("\n").filter((l) => l.includes("slave") && l.includes("connected")).length;
    return info.includes("cluster_state:ok") && slaves === masters;
  });
  return {
    ports,
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(","),
    servers,
    async cleanup() {
      for (const s of servers) await s.kill();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface PrivatePostgres {
  port: number;
  /** URL of the database `app` (created on first start). */
  url: string;
  /** Immediate shutdown (no checkpoint): the nearest pg_ctl gives to a crash. */
  stop(): void;
  start(): void;
  cleanup(): void;
}

function pgBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(a) - Number(b)) : [];
  const v = versions.at(-1);
  if (!v) throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql");
  return join(root, v, "bin");
}

/** Runs as the postgres user (initdb/pg_ctl refuse root), as /work/shared/recipes/pg-start.sh does. */
function asPostgres(cmd: string, args: string[]): void {
  const r = spawnSync("runuser", ["-u", "postgres", "--", cmd, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stdout}${r.stderr}`);
}

/** A private Postgres cluster (initdb + pg_ctl) on a free port; trust auth, fsync off, loopback only. */
export async function privatePostgres(): Promise<PrivatePostgres> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "trib-chaos-pg-"));
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  spawnSync("mkdir", ["-p", data]);
  const pwd = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  chownSync(data, Number(pwd.stdout.trim()), Number(gid.stdout.trim()));
  chmodSync(data, 0o700);
  const bin = pgBin();
  asPostgres(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]);
  const start = () =>
    asPostgres(join(bin, "pg_ctl"), [
      "-D",
      data,
      "-w",
      "-l",
      join(data, "server.log"),
      "-o",
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${data} -c fsync=off -c synchronous_commit=on -c full_page_writes=off`,
      "start",
    ]);
  const stop = () => asPostgres(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"]);
  start();
  asPostgres("createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "app"]);
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/app`,
    stop,
    start,
    cleanup() {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
