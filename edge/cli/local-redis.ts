import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Config } from "../../core/config.js";
import type { Logger } from "../../core/logger.js";
import { createRedis } from "../../core/redis/connection.js";

/**
 * `tributary start`'s embedded default: when REDIS_URL points at loopback, nothing answers there
 * and `redis-server` is installed, run one as a child process. It keeps an append-only file under
 * DATA_DIR/redis because the streams are the system of record (I1): a restart must not lose them.
 */
export interface LocalRedis {
  /** The child, when we started one; undefined when a Redis was already there. */
  child: ChildProcess | undefined;
  stop(): Promise<void>;
}

async function answers(config: Config): Promise<boolean> {
  const probe = createRedis(config, { name: "tributary-probe", failFast: true });
  probe.on("error", () => undefined);
  try {
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export async function ensureLocalRedis(config: Config, log: Logger): Promise<LocalRedis> {
  const none: LocalRedis = { child: undefined, stop: async () => undefined };
  if (config.REDIS_CLUSTER_NODES) return none;
  if (await answers(config)) return none;
  const url = new URL(config.REDIS_URL);
  const loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].includes(url.hostname);
  const installed = spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
  if (!loopback || !installed) return none; // the caller reports Redis as unreachable (exit 3)
  const dir = resolve(join(config.DATA_DIR, "redis"));
  mkdirSync(dir, { recursive: true });
  const port = url.port || "6379";
  const child = spawn(
    "redis-server",
    ["--port", port, "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
    { stdio: "ignore" },
  );
  log.info({ port, dir }, "started a local redis-server (no Redis answered on loopback)");
  for (let i = 0; i < 100; i++) {
    if (await answers(config)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}
