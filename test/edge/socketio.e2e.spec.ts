import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { SINGLE_URL } from "../support/redis.js";
import { mintToken, randomIdentity, TEST_JWT_SECRET } from "../support/tokens.js";
import { Client, Conversation } from "./socketio-support.js";

/**
 * Two `tributary edge` processes on one Redis, the stock client against them: a session started on
 * one node is recovered on the other after the first shuts down (a rolling deploy), with every
 * missed event of both subscriptions delivered once.
 *
 * The processes cannot take a key prefix, so they run on a Redis database of their own (DB 9) and
 * the test deletes exactly the keys it created.
 */
const DB = 9;
const PARTITIONS = 4;
const waitFor = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 20 });
vi.setConfig({ testTimeout: 60_000 });

interface EdgeProcess {
  child: ChildProcess;
  url: string;
  dataDir: string;
}

const procs: EdgeProcess[] = [];
let redis: Redis;

function startEdgeProcess(): Promise<EdgeProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-sio-e2e-"));
  const child = spawn(process.execPath, ["edge/cli/bin.mjs", "edge"], {
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: "0",
      REDIS_URL: `${SINGLE_URL}/${DB}`,
      DATA_DIR: dataDir,
      PARTITIONS: String(PARTITIONS),
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      if (process.env.SIO_DEBUG) process.stdout.write(d);
      err += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(err);
      if (m?.[1]) {
        const p = { child, url: m[1], dataDir };
        procs.push(p);
        resolve(p);
      }
    });
    child.once("exit", (code) => reject(new Error(`edge exited with ${code}: ${err}`)));
  });
}

function stop(p: EdgeProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null) return resolve();
    p.child.once("exit", () => resolve());
    p.child.kill("SIGTERM");
  });
}

beforeAll(async () => {
  redis = new Redis(`${SINGLE_URL}/${DB}`);
});

const created: string[] = [];
afterAll(async () => {
  for (const p of procs) {
    await stop(p);
    rmSync(p.dataDir, { recursive: true, force: true });
  }
  // Only the keys this test made: its conversations' streams/meta and the session records.
  for (const id of created) {
    for (const k of await redis.keys(`*${id}*`)) await redis.unlink(k);
  }
  for (const k of await redis.keys("sio:session:*")) await redis.unlink(k);
  // The partition logs of this database hold only this test's appends.
  for (let p = 0; p < PARTITIONS; p++) await redis.unlink(`{p${p}}:log`);
  redis.disconnect();
});

it("a session started on one edge process is recovered on another after the first shuts down", async () => {
  const t0 = Date.now();
  const log = (m: string) => process.env.SIO_DEBUG && console.log(`${Date.now() - t0}ms ${m}`);
  const [one, two] = await Promise.all([startEdgeProcess(), startEdgeProcess()]);
  log("started");
  if (!one || !two) throw new Error("edges did not start");
  const store = createRedisEventStore(redis, { partitions: PARTITIONS, idemTtlMs: 60_000 });
  const ident = randomIdentity();
  const token = await mintToken(ident);
  const a = await new Conversation(store, ident.tid, ident.sub).create();
  const b = await new Conversation(store, ident.tid, ident.sub).create();
  created.push(a.id, b.id);
  await a.deltas(2);

  const c = new Client(one.url, { auth: { token } });
  try {
    await c.connected();
    log("connected");
    expect(await c.emit("subscribe", { conversationId: a.id, from: "0" })).toEqual({ ok: true, offset: a.offsets.at(-1) });
    expect(await c.emit("subscribe", { conversationId: b.id, from: "0" })).toEqual({ ok: true, offset: b.offsets.at(-1) });
    await b.deltas(2);
    await waitFor(() => expect(c.offsetsOf(a.id)).toEqual(a.offsets));
    await waitFor(() => expect(c.offsetsOf(b.id)).toEqual(b.offsets));
    log("received");

    // The next connection goes to the second node; the first one shuts down under the client.
    (c.socket.io as unknown as { uri: string }).uri = two.url;
    c.socket.io.on("reconnect_attempt", (n) => log(`attempt ${n}`));
    c.socket.io.on("reconnect_error", (e) => log(`reconnect_error ${String(e)}`));
    c.socket.on("connect_error", (e) => log(`connect_error ${e.message}`));
    const dropped = new Promise<void>((res) => c.socket.once("disconnect", () => res()));
    // Listen for the reconnection before it can happen (the client retries within milliseconds).
    const reconnected = dropped.then(() => new Promise<void>((res) => c.socket.once("connect", () => res())));
    await stop(one);
    log("stopped");
    await dropped;
    log("dropped");
    await a.deltas(3);
    await b.deltas(1);
    await reconnected;
    log("reconnected");
    expect(c.socket.recovered).toBe(true);
    await a.deltas(1);
    await waitFor(() => expect(c.offsetsOf(a.id)).toEqual(a.offsets));
    await waitFor(() => expect(c.offsetsOf(b.id)).toEqual(b.offsets));
  } finally {
    c.close();
  }
});
