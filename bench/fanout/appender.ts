/**
 * The fan-out driver (a child process of bench/fanout/run.ts): appends `assistant.delta` events
 * straight to the conversation streams with the event store at a fixed rate, round robin over the
 * conversations, so every server is measured on pure fan-out rather than on chat replies. One
 * append is in flight per stream at a time (one writer per aggregate, I3); events that come due
 * while a stream's append is in flight go out together in its next append, as a batch.
 */
import { createRedis } from "../../core/redis/connection.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { NewEvent } from "../../core/envelope.js";

export type ToAppender =
  | { t: "init"; redisUrl: string; prefix: string; partitions: number; conversationIds: string[]; ownerId: string; tenantId: string }
  | { t: "run"; rate: number; seconds: number; conversations: number }
  | { t: "stop" };
export type FromAppender = { t: "ready" } | { t: "done"; appended: number; appends: number; maxBacklog: number; failed: number; elapsedMs: number; error?: string };

const MAX_BATCH = 200;
let store: ReturnType<typeof createRedisEventStore> | undefined;
let ids: string[] = [];
const version = new Map<string, number>();
const send = (m: FromAppender): void => {
  process.send?.(m);
};
let seq = 0;
const delta = (at: string): NewEvent => ({ type: "assistant.delta", at, data: { messageId: "bench-reply", index: seq++, text: "token " } });

async function init(m: Extract<ToAppender, { t: "init" }>): Promise<void> {
  const redis = createRedis({ REDIS_URL: m.redisUrl, REDIS_KEY_PREFIX: m.prefix }, { name: "bench-appender" });
  store = createRedisEventStore(redis, { partitions: m.partitions, idemTtlMs: 60_000 });
  ids = m.conversationIds;
  for (const id of ids) {
    const ref = { kind: "conversation" as const, id };
    const head = await store.head(ref);
    if (head.version === 0) {
      const at = new Date().toISOString();
      const r = await store.append(ref, 0, [{ type: "conversation.created", at, data: { title: "bench", model: "sim", ownerId: m.ownerId, tenantId: m.tenantId, projectId: null } }], `create-${id}`);
      version.set(id, r.toVersion);
    } else version.set(id, head.version);
  }
  send({ t: "ready" });
}

async function run(rate: number, seconds: number, conversations: number): Promise<void> {
  const s = store;
  // Only the layout's conversations: an append nobody follows would count as a lost delivery.
  const targets = ids.slice(0, Math.max(1, Math.min(conversations, ids.length)));
  if (!s) throw new Error("not initialised");
  const pending = new Map<string, number>();
  const inflight = new Set<string>();
  let appended = 0;
  let appends = 0;
  let failed = 0;
  let maxBacklog = 0;
  let error: string | undefined;
  let issued = 0;
  let rr = 0;
  let settle: (() => void) | undefined;
  const kick = (id: string): void => {
    if (inflight.has(id)) return;
    const n = Math.min(MAX_BATCH, pending.get(id) ?? 0);
    if (n === 0) return;
    pending.set(id, (pending.get(id) ?? 0) - n);
    inflight.add(id);
    const at = new Date().toISOString();
    const v = version.get(id) ?? 0;
    s.append({ kind: "conversation", id }, v, Array.from({ length: n }, () => delta(at)), `b-${id}-${v}-${seq}`).then(
      (r) => {
        version.set(id, r.toVersion);
        appended += n;
        appends++;
      },
      async (e: unknown) => {
        failed += n;
        error = e instanceof Error ? e.message : String(e);
        const head = await s.head({ kind: "conversation", id }).catch(() => undefined);
        if (head) version.set(id, head.version);
      },
    ).finally(() => {
      inflight.delete(id);
      kick(id);
      if (inflight.size === 0 && settle) settle();
    });
  };
  const t0 = Date.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = Math.min(seconds, (Date.now() - t0) / 1000);
      const due = Math.floor(rate * elapsed) - issued;
      for (let i = 0; i < due; i++) {
        const id = targets[rr++ % targets.length] as string;
        pending.set(id, (pending.get(id) ?? 0) + 1);
        issued++;
        kick(id);
      }
      let backlog = 0;
      for (const n of pending.values()) backlog += n;
      maxBacklog = Math.max(maxBacklog, backlog);
      if (elapsed >= seconds) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  // Everything issued gets appended (bounded: at most MAX_BATCH per stream per round trip).
  await new Promise<void>((resolve) => {
    let left = 0;
    for (const n of pending.values()) left += n;
    if (inflight.size === 0 && left === 0) return resolve();
    settle = () => {
      let rest = 0;
      for (const n of pending.values()) rest += n;
      if (rest === 0) resolve();
    };
    const guard = setTimeout(resolve, 15_000);
    guard.unref();
  });
  send({ t: "done", appended, appends, maxBacklog, failed, elapsedMs: Date.now() - t0, ...(error ? { error } : {}) });
}

process.on("message", (m: ToAppender) => {
  const fail = (e: unknown): void => send({ t: "done", appended: 0, appends: 0, maxBacklog: 0, failed: 0, elapsedMs: 0, error: e instanceof Error ? e.message : String(e) });
  if (m.t === "init") init(m).catch(fail);
  else if (m.t === "run") run(m.rate, m.seconds, m.conversations).catch(fail);
  else process.exit(0);
});
process.on("disconnect", () => process.exit(0));
