import { randomUUID } from "node:crypto";
import { Cluster, Redis } from "ioredis";
import type { RedisClient } from "../../core/redis/connection.js";

/**
 * Redis for integration tests: a single Redis (127.0.0.1:6379) or the 3-master cluster
 * (REDIS_CLUSTER_NODES, default 127.0.0.1:7000-7002), each client with its own random key prefix so
 * tests running at the same time never see each other's keys — including shared-looking keys such as
 * `{p3}:log`.
 *
 * The prefix is ioredis's `keyPrefix`: it is added to every key argument (also KEYS of scripts and
 * the STREAMS of XREAD/XREADGROUP), while the `{pN}` hash tag stays the first `{…}` of the key, so
 * slots are unchanged and cluster scripts still work. Replies that *name* keys (SCAN, XREAD's stream
 * names, KEYS) carry the prefix: strip it with `unprefix()`. Never FLUSHALL: other engineers' tests
 * share these servers; `cleanup()` deletes only keys under this prefix.
 *
 * Usage:
 *   const r = await testRedis("single");        // or "cluster"
 *   afterAll(() => r.cleanup());
 *   const store = createRedisEventStore(r.client, { partitions: 4, idemTtlMs: 60_000 });
 */
export type RedisMode = "single" | "cluster";

/** Both modes, for `describe.each(REDIS_MODES)` to run one suite on a single Redis and on the cluster. */
export const REDIS_MODES: RedisMode[] = ["single", "cluster"];

export const SINGLE_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const CLUSTER_NODES = (process.env.REDIS_CLUSTER_NODES ?? "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);

export interface TestRedis {
  mode: RedisMode;
  /** Client whose keys all live under `prefix`. */
  client: RedisClient;
  /** e.g. "t:3f2a…:"; contains no glob characters and no braces. */
  prefix: string;
  /** Environment for a child process (CLI e2e tests) pointing at the same server(s). */
  env: Record<string, string>;
  /** Open another client with the same prefix (blocking reads, a second "process"). */
  duplicate(): RedisClient;
  /** Key name as it appears in replies that name keys → our logical key name. */
  unprefix(key: string): string;
  /** Delete every key under the prefix (on every master in cluster mode) and close all clients. */
  cleanup(): Promise<void>;
}

function clusterNodes() {
  return CLUSTER_NODES.map((hp) => {
    const i = hp.lastIndexOf(":");
    return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
  });
}

/** A client without a prefix (for cleanup, or tests that must see the real key names). */
export function rawClient(mode: RedisMode, keyPrefix?: string): RedisClient {
  const opts = { maxRetriesPerRequest: 3, connectionName: "tributary-test", ...(keyPrefix ? { keyPrefix } : {}) };
  if (mode === "cluster") return new Cluster(clusterNodes(), { redisOptions: opts, keyPrefix: keyPrefix ?? "" });
  return new Redis(SINGLE_URL, opts);
}

/** Every master's connection: one for a single Redis, one per master of the cluster. */
export function masters(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes("master") : [client];
}

/** Delete every key matching `prefix*` on every master; keys are deleted one by one (no CROSSSLOT). */
export async function deleteByPrefix(client: RedisClient, prefix: string): Promise<number> {
  let deleted = 0;
  for (const node of masters(client)) {
    let cursor = "0";
    do {
      const [next, found] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (found.length > 0) {
        const p = node.pipeline();
        for (const k of found) p.unlink(k);
        await p.exec();
        deleted += found.length;
      }
    } while (cursor !== "0");
  }
  return deleted;
}

export async function testRedis(mode: RedisMode = "single"): Promise<TestRedis> {
  const prefix = `t:${randomUUID().replace(/-/g, "")}:`;
  const opened: RedisClient[] = [];
  const open = (): RedisClient => {
    const c = rawClient(mode, prefix);
    opened.push(c);
    return c;
  };
  const client = open();
  await client.ping();
  if (client instanceof Cluster) {
    // nodes("master") is only complete once the slot map is loaded; wait for it.
    while (client.status !== "ready") await new Promise((r) => setTimeout(r, 20));
  }
  const env: Record<string, string> = mode === "cluster" ? { REDIS_CLUSTER_NODES: CLUSTER_NODES.join(",") } : { REDIS_URL: SINGLE_URL };
  return {
    mode,
    client,
    prefix,
    env,
    duplicate: open,
    unprefix: (key) => (key.startsWith(prefix) ? key.slice(prefix.length) : key),
    async cleanup() {
      const raw = rawClient(mode);
      try {
        await raw.ping();
        await deleteByPrefix(raw, prefix);
      } finally {
        raw.disconnect();
        for (const c of opened) c.disconnect();
      }
    },
  };
}
