/**
 * The baseline a user would otherwise pick: `socket.io` with `@socket.io/redis-streams-adapter`,
 * speaking the same client events as Tributary (`subscribe` / `chat_message` with acknowledgements,
 * `chat_event (envelope, offset)` to a room per conversation).
 *
 *   npx tsx bench/baseline/server.ts --mode chat|fanout [--uws] [--port 0]
 *
 * Environment: BENCH_REDIS_URL [redis://127.0.0.1:6379], BENCH_PREFIX (key namespace, e.g.
 * `bench:1a2b:`), BENCH_PARTITIONS [16], AUTH_JWT_SECRET (HS256, verified at the handshake as
 * Tributary does), SIM_TOKENS_PER_SEC [50], SIM_MAX_TOKENS [64].
 *
 * - `chat`: `chat_message` starts a simulated reply (assistant.started, SIM_MAX_TOKENS deltas at
 *   SIM_TOKENS_PER_SEC, assistant.completed); each event is XADDed to the conversation's stream
 *   under BENCH_PREFIX and then emitted to the conversation's room through the adapter.
 * - `fanout`: follows Tributary's own conversation streams (appended by the bench) and emits each
 *   entry to the room — the pure fan-out case of issue 5, server (A).
 * - `--uws`: the same Socket.IO server attached to uWebSockets.js with `attachApp` — server (B).
 *
 * Prints `listening on http://127.0.0.1:<port>` once ready. Loopback only.
 */
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { jwtVerify } from "jose";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { streamKeys } from "../../core/keys.js";
import { createApp, listenApp } from "../../edge/uws.js";
import { StreamFollower } from "../lib/stream-follower.js";
import { flag, hasFlag } from "../lib/args.js";

const MODE = flag("--mode") ?? "chat";
const UWS = hasFlag("--uws");
const PORT = Number(flag("--port") ?? 0);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = process.env.BENCH_PREFIX ?? "bench:baseline:";
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 16);
const SECRET = process.env.AUTH_JWT_SECRET ? new TextEncoder().encode(process.env.AUTH_JWT_SECRET) : undefined;
const TOKENS_PER_SEC = Number(process.env.SIM_TOKENS_PER_SEC ?? 50);
const MAX_TOKENS = Number(process.env.SIM_MAX_TOKENS ?? 64);
if (MODE !== "chat" && MODE !== "fanout") throw new Error(`--mode must be chat or fanout, got ${MODE}`);

const redis = new Redis(REDIS_URL, { connectionName: "bench-baseline" });
const io = new Server({ cors: { origin: "*" } });
io.adapter(createAdapter(redis, { streamName: `${PREFIX}socket.io` }));

io.use((socket, next) => {
  const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
  if (!SECRET) return next();
  if (typeof token !== "string") return next(new Error("UNAUTHENTICATED"));
  jwtVerify(token, SECRET).then(
    () => next(),
    () => next(new Error("UNAUTHENTICATED")),
  );
});

const follower =
  MODE === "fanout"
    ? new StreamFollower(REDIS_URL, (events) => {
        // One emit per event to the room: the adapter publishes it to its Redis stream and
        // broadcasts it locally, as an application on socket.io would.
        for (const e of events) io.to(e.conversationId).emit("chat_event", JSON.parse(e.json), e.offset);
      })
    : undefined;

const running = new Set<string>();
let seq = 0;

async function emitEvent(conversationId: string, type: string, data: unknown, version: number): Promise<string> {
  const at = new Date().toISOString();
  // The reply's events are stored, as Tributary stores them, before anyone sees them.
  const offset = (await redis.xadd(`${PREFIX}baseline:conv:${conversationId}`, "*", "e", JSON.stringify({ type, version, at, data }))) as string;
  io.to(conversationId).emit("chat_event", { conversationId, offset, version, type, at, data }, offset);
  return offset;
}

async function simulateReply(conversationId: string, replyId: string, replyTo: string): Promise<void> {
  let v = 0;
  try {
    await emitEvent(conversationId, "assistant.started", { messageId: replyId, replyTo, model: "sim" }, ++v);
    const gap = 1000 / TOKENS_PER_SEC;
    const t0 = Date.now();
    let text = "";
    for (let i = 0; i < MAX_TOKENS; i++) {
      const wait = t0 + (i + 1) * gap - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const piece = `tok${i} `;
      text += piece;
      await emitEvent(conversationId, "assistant.delta", { messageId: replyId, index: i, text: piece }, ++v);
    }
    await emitEvent(conversationId, "assistant.completed", { messageId: replyId, text, finishReason: "length", usage: { inputTokens: 3, outputTokens: MAX_TOKENS }, costMicros: 0 }, ++v);
  } finally {
    running.delete(conversationId);
  }
}

io.on("connection", (socket) => {
  socket.on("subscribe", (body: { conversationId?: unknown }, ack?: (r: unknown) => void) => {
    const id = typeof body?.conversationId === "string" ? body.conversationId : undefined;
    if (!id) return ack?.({ ok: false, error: { code: "VALIDATION_FAILED", message: "conversationId" } });
    void socket.join(id);
    const follow = follower ? follower.follow(PREFIX + streamKeys({ kind: "conversation", id }, PARTITIONS).stream, id) : Promise.resolve();
    follow.then(
      () => ack?.({ ok: true, offset: "0" }),
      (e: unknown) => ack?.({ ok: false, error: { code: "UNAVAILABLE", message: String(e) } }),
    );
  });
  socket.on("chat_message", (body: { conversationId?: unknown }, ack?: (r: unknown) => void) => {
    const id = typeof body?.conversationId === "string" ? body.conversationId : undefined;
    if (!id) return ack?.({ ok: false, error: { code: "VALIDATION_FAILED", message: "conversationId" } });
    if (running.has(id)) return ack?.({ ok: false, error: { code: "CONFLICT", message: "a reply is running" } });
    running.add(id);
    const n = ++seq;
    const messageId = `m${n}`;
    const replyId = `r${n}`;
    emitEvent(id, "message.received", { messageId, clientMessageId: String(n), userId: "bench", text: "…" }, 0).then(
      (offset) => {
        ack?.({ ok: true, messageId, replyId, offset });
        void simulateReply(id, replyId, messageId);
      },
      (e: unknown) => {
        running.delete(id);
        ack?.({ ok: false, error: { code: "UNAVAILABLE", message: String(e) } });
      },
    );
  });
});

async function main(): Promise<void> {
  let port: number;
  if (UWS) {
    const app = createApp();
    io.attachApp(app);
    port = (await listenApp(app, "127.0.0.1", PORT)).port;
  } else {
    const http = createServer();
    io.attach(http);
    port = await new Promise<number>((resolve) => http.listen(PORT, "127.0.0.1", () => resolve((http.address() as { port: number }).port)));
  }
  process.stderr.write(`socket.io baseline (${MODE}${UWS ? ", uWS" : ""}) listening on http://127.0.0.1:${port}\n`);
}

const stop = (): void => {
  void follower?.close();
  void io.close();
  redis.disconnect();
  setTimeout(() => process.exit(0), 300).unref();
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
main().catch((e: unknown) => {
  process.stderr.write(`baseline failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
