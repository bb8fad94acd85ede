/**
 * The ceilings of issue 5: a bare uWebSockets.js loop that XREADs the conversation streams and
 * delivers each entry, with nothing else — no authentication, no resume, no buffer bounds, no
 * protocol framing beyond the transport's own.
 *
 *   npx tsx bench/fanout/bare-server.ts --transport ws|sse [--port 0]
 *
 * - `ws` (C): clients connect to `/ws?c=<conversationId>`; each entry is `app.publish`ed to the
 *   conversation's topic, so the per-client work is uWS's native loop — the WebSocket ceiling.
 * - `sse` (D): clients GET `/sse?c=<conversationId>`; each entry is written as an SSE frame to every
 *   open response of the conversation (corked) — the SSE ceiling.
 *
 * Environment: BENCH_REDIS_URL, BENCH_PREFIX, BENCH_PARTITIONS (as the baseline server).
 */
import { streamKeys } from "../../core/keys.js";
import { createApp, listenApp, type HttpResponse } from "../../edge/uws.js";
import { StreamFollower } from "../lib/stream-follower.js";
import { flag } from "../lib/args.js";

const TRANSPORT = flag("--transport") ?? "ws";
const PORT = Number(flag("--port") ?? 0);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = process.env.BENCH_PREFIX ?? "";
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 16);
if (TRANSPORT !== "ws" && TRANSPORT !== "sse") throw new Error(`--transport must be ws or sse, got ${TRANSPORT}`);

const app = createApp();
const sse = new Map<string, Set<HttpResponse>>();
const follower = new StreamFollower(REDIS_URL, (events) => {
  if (TRANSPORT === "ws") {
    for (const e of events) app.publish(e.conversationId, e.json);
    return;
  }
  for (const e of events) {
    const set = sse.get(e.conversationId);
    if (!set) continue;
    const frame = `id: ${e.offset}\nevent: e\ndata: ${e.json}\n\n`;
    for (const res of set) res.cork(() => res.write(frame));
  }
});
const keyOf = (id: string): string => PREFIX + streamKeys({ kind: "conversation", id }, PARTITIONS).stream;

if (TRANSPORT === "ws") {
  app.ws<{ c: string }>("/ws", {
    maxBackpressure: 1024 * 1024,
    idleTimeout: 120,
    upgrade: (res, req, context) => {
      const c = new URLSearchParams(req.getQuery() ?? "").get("c") ?? "";
      res.upgrade({ c }, req.getHeader("sec-websocket-key"), req.getHeader("sec-websocket-protocol"), req.getHeader("sec-websocket-extensions"), context);
    },
    open: (ws) => {
      const { c } = ws.getUserData();
      ws.subscribe(c);
      void follower.follow(keyOf(c), c);
    },
  });
} else {
  app.get("/sse", (res, req) => {
    const c = new URLSearchParams(req.getQuery() ?? "").get("c") ?? "";
    let set = sse.get(c);
    if (!set) sse.set(c, (set = new Set()));
    const s = set;
    res.onAborted(() => s.delete(res));
    res.cork(() => {
      res.writeStatus("200 OK").writeHeader("content-type", "text/event-stream").writeHeader("cache-control", "no-cache").write(": ok\n\n");
    });
    s.add(res);
    void follower.follow(keyOf(c), c);
  });
}

listenApp(app, "127.0.0.1", PORT).then(
  ({ port }) => process.stderr.write(`bare uWS ${TRANSPORT} listening on http://127.0.0.1:${port}\n`),
  (e: unknown) => {
    process.stderr.write(`${String(e)}\n`);
    process.exit(1);
  },
);
const stop = (): void => {
  void follower.close();
  setTimeout(() => process.exit(0), 200).unref();
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
