import net from "node:net";
import { EventSource } from "eventsource";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Envelope } from "../../core/envelope.js";
import type { EventStore } from "../../core/event-store.js";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { createAccessChecker } from "../../edge/access.js";
import { createAuthenticator } from "../../edge/auth/verifier.js";
import { signToken } from "../../edge/auth/sign.js";
import { Fanout } from "../../edge/fanout/index.js";
import { createEdgeMetrics } from "../../edge/metrics.js";
import { attachSse, type SseDeps, type SseServer } from "../../edge/sse/index.js";
import { TributaryError } from "../../core/errors.js";
import { closeListenSocket, createApp, listenApp, type us_listen_socket } from "../../edge/uws.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";
import { Appender, newConversationId } from "./fanout-support.js";

const PARTITIONS = 4;
const SECRET = "sse-test-secret-0123456789abcdef";
const waitFor = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 20_000, interval: 10 });

interface Server {
  base: string;
  port: number;
  sse: SseServer;
  fanout: Fanout;
  metrics: ReturnType<typeof createEdgeMetrics>;
  close(): Promise<void>;
}

/** A parsed SSE frame (comments kept apart), from a raw body. */
interface Frame {
  id?: string;
  event?: string;
  data?: string;
  comments: string[];
}

function parseFrames(text: string): { frames: Frame[]; rest: string } {
  const frames: Frame[] = [];
  let rest = text;
  for (let i = rest.indexOf("\n\n"); i >= 0; i = rest.indexOf("\n\n")) {
    const block = rest.slice(0, i);
    rest = rest.slice(i + 2);
    const f: Frame = { comments: [] };
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) f.comments.push(line.slice(1).trim());
      else if (line.startsWith("id: ")) f.id = line.slice(4);
      else if (line.startsWith("event: ")) f.event = line.slice(7);
      else if (line.startsWith("data: ")) f.data = line.slice(6);
    }
    frames.push(f);
  }
  return { frames, rest };
}

/** Raw fetch of the stream: the response head at once, then frames as they arrive. */
async function openRaw(url: string, headers: Record<string, string> = {}) {
  const ac = new AbortController();
  const res = await fetch(url, { headers, signal: ac.signal });
  const frames: Frame[] = [];
  let buf = "";
  const reading = (async () => {
    if (!res.body) return;
    const dec = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        buf += dec.decode(chunk as Uint8Array, { stream: true });
        const p = parseFrames(buf);
        buf = p.rest;
        frames.push(...p.frames);
      }
    } catch {
      // aborted by close()
    }
  })();
  return {
    res,
    frames,
    events: () => frames.filter((f) => f.id !== undefined),
    async close() {
      ac.abort();
      await reading;
    },
  };
}

describe.each(REDIS_MODES)("Server-Sent Events on %s Redis", (mode) => {
  let r: TestRedis;
  let store: EventStore;
  const servers: Server[] = [];
  const tenant = `ten-${Math.random().toString(36).slice(2, 8)}`;
  let aliceToken: string;
  let bobToken: string;
  let foreignToken: string;

  async function startServer(
    opts: { pingIntervalMs?: number; maxBufferedBytes?: number; retryMs?: number; breaker?: SseDeps["breaker"] } = {},
  ): Promise<Server> {
    const app = createApp();
    const log = createLogger("silent");
    const metrics = createEdgeMetrics({ defaultMetrics: false });
    const fanout = new Fanout({ redis: r.client, partitions: PARTITIONS, publish: (t, f) => app.publish(t, f), log });
    const sse = attachSse(
      app,
      { log, metrics },
      {
        fanout,
        authenticator: createAuthenticator({ secret: SECRET }),
        access: createAccessChecker(r.client, PARTITIONS),
        metrics,
        pingIntervalMs: opts.pingIntervalMs,
        maxBufferedBytes: opts.maxBufferedBytes,
        retryMs: opts.retryMs,
        breaker: opts.breaker,
      },
    );
    const { socket, port }: { socket: us_listen_socket; port: number } = await listenApp(app, "127.0.0.1", 0);
    const s: Server = {
      base: `http://127.0.0.1:${port}`,
      port,
      sse,
      fanout,
      metrics,
      async close() {
        closeListenSocket(socket);
        sse.close();
        await fanout.stop();
      },
    };
    servers.push(s);
    return s;
  }

  beforeAll(async () => {
    r = await testRedis(mode);
    store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
    const sign = (sub: string, tid: string, roles: string[] = []) => signToken({ sub, tid, tier: "registered", roles }, { secret: SECRET, ttlSeconds: 600 });
    aliceToken = await sign("alice", tenant);
    bobToken = await sign("bob", tenant);
    foreignToken = await sign("alice", `${tenant}-other`, ["admin"]);
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await r.cleanup();
  });

  async function conversation(): Promise<Appender> {
    const app = new Appender(store, newConversationId());
    await app.create("alice", tenant);
    return app;
  }

  it("answers 200 text/event-stream with no-cache at once, before any event", async () => {
    const s = await startServer();
    const conv = await conversation();
    const raw = await openRaw(`${s.base}/v1/conversations/${conv.conversationId}/events`, { authorization: `Bearer ${aliceToken}` });
    expect(raw.res.status).toBe(200);
    expect(raw.res.headers.get("content-type")).toBe("text/event-stream");
    expect(raw.res.headers.get("cache-control")).toBe("no-cache");
    await waitFor(() => expect(raw.frames[0]?.comments).toEqual(["connected"]));
    await raw.close();
  });

  it("refuses before streaming: 401 without a valid token, 404 for another user's or tenant's or an unknown conversation", async () => {
    const s = await startServer();
    const conv = await conversation();
    const url = `${s.base}/v1/conversations/${conv.conversationId}/events`;
    const cases: Array<[Record<string, string>, string, number, string]> = [
      [{}, url, 401, "UNAUTHENTICATED"],
      [{ authorization: "Bearer nope" }, url, 401, "UNAUTHENTICATED"],
      [{ authorization: `Bearer ${bobToken}` }, url, 404, "NOT_FOUND"],
      [{ authorization: `Bearer ${foreignToken}` }, url, 404, "NOT_FOUND"],
      [{ authorization: `Bearer ${aliceToken}` }, `${s.base}/v1/conversations/${newConversationId()}/events`, 404, "NOT_FOUND"],
      [{ authorization: `Bearer ${aliceToken}` }, `${url}?from=banana`, 400, "VALIDATION_FAILED"],
    ];
    for (const [headers, u, status, code] of cases) {
      const res = await fetch(u, { headers });
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toContain("application/json");
      const body = (await res.json()) as { error: { code: string }; requestId: string };
      expect(body.error.code).toBe(code);
      expect(typeof body.requestId).toBe("string");
    }
  });

  it("answers 503 UNAVAILABLE at once while the breaker says Redis is down", async () => {
    const s = await startServer({
      breaker: {
        assertUp: () => {
          throw new TributaryError("UNAVAILABLE", "redis is down", { retryAfter: 2 });
        },
        trip: () => undefined,
      },
    });
    const conv = await conversation();
    const res = await fetch(`${s.base}/v1/conversations/${conv.conversationId}/events`, { headers: { authorization: `Bearer ${aliceToken}` } });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("UNAVAILABLE");
  });

  it("streams live events to a real EventSource client (token in the query), id/event/data per CONTRACT §5", async () => {
    const s = await startServer();
    const conv = await conversation();
    const es = new EventSource(`${s.base}/v1/conversations/${conv.conversationId}/events?access_token=${aliceToken}`);
    const got: Array<{ id: string; type: string; env: Envelope }> = [];
    es.addEventListener("assistant.delta", (e) => got.push({ id: e.lastEventId, type: e.type, env: JSON.parse(e.data) as Envelope }));
    await new Promise<void>((resolve, reject) => {
      es.onopen = () => resolve();
      es.onerror = (e) => reject(new Error(`EventSource error ${e.message ?? ""}`));
    });
    // onopen fires on the response head: the subscription is live by then.
    const live = await conv.append(8, 3);
    await waitFor(() => expect(got.map((g) => g.id)).toEqual(live));
    for (const [i, g] of got.entries()) {
      expect(g.type).toBe("assistant.delta");
      expect(g.env).toMatchObject({ conversationId: conv.conversationId, offset: live[i], version: i + 2, type: "assistant.delta" });
    }
    es.close();
  });

  it("two clients see the same events in the same order", async () => {
    const s = await startServer();
    const conv = await conversation();
    const url = `${s.base}/v1/conversations/${conv.conversationId}/events`;
    const a = await openRaw(url, { authorization: `Bearer ${aliceToken}` });
    const b = await openRaw(`${url}?access_token=${aliceToken}`);
    await waitFor(() => expect(a.frames.length * b.frames.length).toBeGreaterThan(0));
    const live = await conv.append(20, 4);
    await waitFor(() => expect(a.events().map((f) => f.id)).toEqual(live));
    await waitFor(() => expect(b.events().map((f) => f.id)).toEqual(live));
    expect(a.events().map((f) => f.data)).toEqual(b.events().map((f) => f.data));
    await a.close();
    await b.close();
  });

  it("resumes from every ?from= cut with exactly the later events, in order, then live", async () => {
    const s = await startServer();
    const conv = await conversation();
    await conv.append(10, 3);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 11 }), async (cut) => {
        const from = cut === 0 ? "0" : (conv.offsets[cut - 1] as string);
        const raw = await openRaw(`${s.base}/v1/conversations/${conv.conversationId}/events?from=${from}`, { authorization: `Bearer ${aliceToken}` });
        const more = await conv.append(1);
        const expected = conv.offsets.slice(cut);
        await waitFor(() => expect(raw.events().map((f) => f.id)).toEqual(expected));
        expect(raw.events().at(-1)?.id).toBe(more[0]);
        await raw.close();
      }),
      { numRuns: 15 },
    );
  });

  it("Last-Event-ID wins over ?from=", async () => {
    const s = await startServer();
    const conv = await conversation();
    await conv.append(6);
    const url = `${s.base}/v1/conversations/${conv.conversationId}/events?from=${conv.offsets[1]}`;
    const raw = await openRaw(url, { authorization: `Bearer ${aliceToken}`, "last-event-id": conv.offsets[4] as string });
    await waitFor(() => expect(raw.events().map((f) => f.id)).toEqual(conv.offsets.slice(5)));
    await raw.close();
    const viaFrom = await openRaw(url, { authorization: `Bearer ${aliceToken}` });
    await waitFor(() => expect(viaFrom.events().map((f) => f.id)).toEqual(conv.offsets.slice(2)));
    await viaFrom.close();
  });

  it("writes ': ping' comments at the configured interval", async () => {
    const s = await startServer({ pingIntervalMs: 30 });
    const conv = await conversation();
    const raw = await openRaw(`${s.base}/v1/conversations/${conv.conversationId}/events`, { authorization: `Bearer ${aliceToken}` });
    await waitFor(() => expect(raw.frames.filter((f) => f.comments.includes("ping")).length).toBeGreaterThanOrEqual(2));
    await raw.close();
  });

  it("ends a stream once its token expires", async () => {
    const s = await startServer({ pingIntervalMs: 30 });
    const conv = await conversation();
    const short = await signToken({ sub: "alice", tid: tenant, tier: "registered" }, { secret: SECRET, ttlSeconds: 1 });
    const raw = await openRaw(`${s.base}/v1/conversations/${conv.conversationId}/events`, { authorization: `Bearer ${short}` });
    expect(raw.res.status).toBe(200);
    expect(s.sse.size).toBe(1);
    await waitFor(() => expect(s.sse.size).toBe(0));
    const gauge = await s.metrics.connections.get();
    expect(gauge.values.find((v) => v.labels.transport === "sse")?.value ?? 0).toBe(0);
    await raw.close();
  });

  it("clients leaving mid-catch-up or live release everything they held", async () => {
    const s = await startServer();
    const conv = await conversation();
    await conv.append(300, 50);
    const url = `${s.base}/v1/conversations/${conv.conversationId}/events`;
    const clients = await Promise.all(
      Array.from({ length: 6 }, (_, i) => openRaw(i % 2 === 0 ? `${url}?from=0` : url, { authorization: `Bearer ${aliceToken}` })),
    );
    expect(s.fanout.stats().conversations).toBe(1);
    for (const c of clients) await c.close();
    await waitFor(() => expect(s.sse.size).toBe(0));
    await waitFor(() => expect(s.fanout.stats()).toMatchObject({ conversations: 0, listeners: 0 }));
  });

  it("EventSource reconnects after the server cuts the stream and resumes by Last-Event-ID, exactly once", async () => {
    const s = await startServer({ retryMs: 20 });
    const conv = await conversation();
    const es = new EventSource(`${s.base}/v1/conversations/${conv.conversationId}/events?from=0&access_token=${aliceToken}`);
    const ids: string[] = [];
    es.addEventListener("conversation.created", (e) => ids.push(e.lastEventId));
    es.addEventListener("assistant.delta", (e) => ids.push(e.lastEventId));
    await conv.append(5);
    await waitFor(() => expect(ids).toEqual(conv.offsets));
    let opens = 0;
    es.onopen = () => opens++;
    s.sse.close(); // cuts every open stream; the client reconnects with Last-Event-ID
    await conv.append(5, 2);
    await waitFor(() => expect(ids).toEqual(conv.offsets));
    expect(opens).toBeGreaterThanOrEqual(1);
    es.close();
  });

  it("cuts a client that stops reading once over its bound, while another client keeps receiving; the cut one resumes exactly", async () => {
    const s = await startServer({ maxBufferedBytes: 64 * 1024 });
    const conv = new Appender(store, newConversationId(), 16 * 1024);
    await conv.create("alice", tenant);
    const path = `/v1/conversations/${conv.conversationId}/events`;
    // A client that reads the head, then stops reading: the kernel buffers fill, then ours.
    const slow = net.connect(s.port, "127.0.0.1");
    let slowText = "";
    let slowClosed = false;
    let paused = false;
    slow.on("data", (d: Buffer) => {
      slowText += d.toString("latin1");
      if (!paused) {
        paused = true;
        slow.pause();
      }
    });
    slow.on("close", () => (slowClosed = true));
    slow.on("error", () => undefined);
    slow.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${aliceToken}\r\n\r\n`);
    await waitFor(() => expect(slowText).toContain(": connected"));
    const fast = await openRaw(`${s.base}${path}`, { authorization: `Bearer ${aliceToken}` });
    await waitFor(() => expect(fast.frames.length).toBeGreaterThan(0));
    // ~13 MB: more than loopback socket buffers hold, so uWS reports backpressure.
    await conv.append(800, 25);
    const live = conv.offsets.slice(1);
    await waitFor(() => expect(fast.events().length).toBe(live.length));
    expect(fast.events().map((f) => f.id)).toEqual(live);
    const drops = await s.metrics.drops.get();
    expect(drops.values.find((v) => v.labels.transport === "sse")?.value).toBe(1);
    // The cut client drains what reached it, then resumes from the last whole event it got.
    slow.resume();
    await waitFor(() => expect(slowClosed).toBe(true));
    const body = slowText.slice(slowText.indexOf("\r\n\r\n") + 4);
    const ids = [...body.matchAll(/^id: (\S+)$/gm)].map((m) => m[1] as string);
    // Only whole frames count: the last id may belong to a frame cut in the middle.
    const whole = parseChunked(body);
    const got = whole.map((f) => f.id).filter((x): x is string => x !== undefined);
    expect(got).toEqual(live.slice(0, got.length));
    expect(got.length).toBeLessThan(live.length);
    expect(ids.length).toBeGreaterThanOrEqual(got.length);
    const last = got.at(-1) ?? "0";
    const resumed = await openRaw(`${s.base}${path}`, { authorization: `Bearer ${aliceToken}`, "last-event-id": last });
    const rest = live.slice(got.length);
    await waitFor(() => expect(resumed.events().length).toBe(rest.length));
    expect(resumed.events().map((f) => f.id)).toEqual(rest);
    await resumed.close();
    await fast.close();
    slow.destroy();
  });
});

/** Decode a chunked HTTP body as far as it is complete, then parse the SSE frames in it. */
function parseChunked(body: string): Frame[] {
  let out = "";
  let i = 0;
  for (;;) {
    const eol = body.indexOf("\r\n", i);
    if (eol < 0) break;
    const size = Number.parseInt(body.slice(i, eol), 16);
    if (!Number.isFinite(size) || size === 0) break;
    if (eol + 2 + size > body.length) break;
    out += body.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
  return parseFrames(out).frames;
}
