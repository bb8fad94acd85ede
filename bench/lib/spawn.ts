import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * A server process the bench owns: `tributary start` (or `edge`) with its own temporary DATA_DIR,
 * a random REDIS_KEY_PREFIX (so it never reads or writes anyone else's keys on a shared Redis), a
 * random JWT secret the bench signs its tokens with, and port 0 (a free port, read back from the
 * "listening on" line). Or any other script (the baseline and ceiling servers) that prints the same
 * line. Stopped with SIGTERM, then SIGKILL after a grace period.
 */
const BIN = fileURLToPath(new URL("../../edge/cli/bin.mjs", import.meta.url));
const LOG_FILE = process.env.BENCH_SERVER_LOG;

export interface SpawnedServer {
  child: ChildProcess;
  pid: number;
  url: string;
  port: number;
  env: Record<string, string>;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** `tributary <role>` (start | edge), or a TypeScript file run through tsx. */
  role?: "start" | "edge";
  script?: string;
  /** Another checkout's `edge/cli/bin.mjs` for `role` (A/B runs against a base build). */
  bin?: string;
  args?: string[];
  /** Node's own flags (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** How long to wait for the listening line. */
  timeoutMs?: number;
  /** Echo the server's stderr (debugging). */
  verbose?: boolean;
  /**
   * Run the server this much *less* nice than the bench (`nice -n -N`, root only): with the load
   * generator at nice N (fan-out `--nice-load N`) the server is back at the normal priority, like
   * Redis, from its first instruction (so every thread it starts inherits it).
   */
  unnice?: number;
}

export function newDeploymentEnv(extra: Record<string, string> = {}): { env: Record<string, string>; dataDir: string; prefix: string; secret: string } {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-bench-"));
  const prefix = `bench:${randomBytes(4).toString("hex")}:`;
  const secret = randomBytes(24).toString("hex");
  return {
    dataDir,
    prefix,
    secret,
    env: { HOST: "127.0.0.1", PORT: "0", DATA_DIR: dataDir, REDIS_KEY_PREFIX: prefix, AUTH_JWT_SECRET: secret, LOG_LEVEL: "warn", ...extra },
  };
}

export function spawnServer(o: SpawnOptions & { env: Record<string, string> }): Promise<SpawnedServer> {
  const args = [...(o.nodeArgs ?? []), ...(o.script ? ["--import", "tsx", o.script, ...(o.args ?? [])] : [o.bin ?? BIN, o.role ?? "start", ...(o.args ?? [])])];
  const [cmd, argv] = o.unnice ? ["nice", ["-n", String(-o.unnice), process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(cmd, argv, { env: { ...process.env, ...o.env }, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let tail = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start within ${o.timeoutMs ?? 60_000} ms: ${tail.slice(-400)}`));
    }, o.timeoutMs ?? 60_000);
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString();
      if (o.verbose) process.stderr.write(text);
      // BENCH_SERVER_LOG: keep every server's output (e.g. Node's --trace-gc lines) in one file.
      if (LOG_FILE) appendFileSync(LOG_FILE, text.replace(/^/gm, `[${child.pid}] `));
      tail = (tail + text).slice(-4000);
      const m = /listening on (http:\/\/[^\s]+)/.exec(tail);
      if (!m?.[1]) return;
      clearTimeout(timer);
      const url = m[1].replace(/\/$/, "");
      const port = Number(new URL(url).port);
      resolve({
        child,
        pid: child.pid as number,
        url,
        port,
        env: o.env,
        stop: () => stopChild(child),
      });
    };
    child.stderr.on("data", onData);
    child.stdout.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${tail.slice(-400)}`));
    });
  });
}

export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
