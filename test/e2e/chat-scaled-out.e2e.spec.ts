import { EventSource } from "eventsource";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Envelope } from "../../core/envelope.js";
import { startDeployment, type Deployment } from "../support/cluster-procs.js";
import { call } from "../support/http-edge.js";
import { REDIS_MODES } from "../support/redis.js";
import { mintToken, randomIdentity } from "../support/tokens.js";

/**
 * Issue 5, end to end: two `tributary edge`, two `tributary worker` and one `tributary projector`
 * processes on one Redis, and again on the 3-master Redis Cluster, with a fresh Postgres database;
 * stock clients only — `socket.io-client` v4 with its defaults (polling, then the upgrade) on one
 * node and WebSocket-only on the other, and the `eventsource` package on both.
 *
 * Checked: the whole chat flow (create, post over HTTP and over Socket.IO `chat_message`, streamed
 * replies, the read model); every client on either node sees the same events in the same order,
 * once each; resume from every offset of the finished conversation (SSE `Last-Event-ID`, `?from=`,
 * Socket.IO `subscribe {from}`) delivers exactly the later events; another tenant gets 404
 * everywhere; `/v1/quota` answers with the caller's tier; both edges record the delivery lag.
 */
const waitFor = <T>(fn: () => T | Promise<T>, timeout = 30_000) => vi.waitFor(fn, { timeout, interval: 25 });
const TYPES = [
  "conversation.created",
  "message.received",
  "message.rejected",
  "assistant.started",
  "assistant.delta",
  "assistant.completed",
  "assistant.cancelled",
  "assistant.failed",
];

/** `call` with the token first, as every request here has one (or none, for /metrics). */
const http = (url: string, token: string | undefined, init: { method?: string; body?: unknown } = {}) =>
  call(url, { ...init, ...(token ? { token } : {}) });

/** An `eventsource` client recording every event (its `id:` and the parsed envelope). */
class SseClient {
  readonly got: Array<{ id: string; env: Envelope }> = [];
  readonly es: EventSource;
  errors = 0;
  constructor(url: string, opts: { token: string; via: "header" | "query"; lastEventId?: string }) {
    const u = new URL(url);
    if (opts.via === "query") u.searchParams.set("access_token", opts.token);
    this.es = new EventSource(u, {
      fetch: (input, init) =>
        fetch(input, {
          ...init,
          headers: {
            ...init.headers,
            ...(opts.via === "header" ? { authorization: `Bearer ${opts.token}` } : {}),
            ...(opts.lastEventId ? { "last-event-id": opts.lastEventId } : {}),
          },
        }),
    });
    for (const t of TYPES) this.es.addEventListener(t, (e) => this.got.push({ id: e.lastEventId, env: JSON.parse(e.data) as Envelope }));
    this.es.addEventListener("error", () => this.errors++);
  }
  offsets(): string[] {
    return this.got.map((g) => g.env.offset);
  }
  close(): void {
    this.es.close();
  }
}

/** A stock Socket.IO client recording chat_event (envelope, offset) per conversation. */
class SioClient {
  readonly socket: Socket;
  readonly got: Array<{ env: Envelope; offset: string }> = [];
  constructor(url: string, opts: Parameters<typeof io>[1]) {
    this.socket = io(url, { forceNew: true, ...opts });
    this.socket.on("chat_event", (env: Envelope, offset: string) => this.got.push({ env, offset }));
  }
  connected(): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once("connect", () => resolve());
      this.socket.once("connect_error", reject);
    });
  }
  emit<T = any>(event: string, payload: unknown): Promise<T> {
    return this.socket.timeout(20_000).emitWithAck(event, payload) as Promise<T>;
  }
  offsetsOf(id: string): string[] {
    return this.got.filter((g) => g.env.conversationId === id).map((g) => g.offset);
  }
  close(): void {
    this.socket.disconnect();
  }
}

const terminalFor = (replyId: string) => (g: { env: Envelope }) =>
  g.env.type === "assistant.completed" && (g.env.data as { messageId: string }).messageId === replyId;

describe.each(REDIS_MODES)("scaled out on %s Redis: 2 edges, 2 workers, 1 projector", (mode) => {
  let d: Deployment;
  let A: string;
  let B: string;
  const who = randomIdentity();
  let token: string;
  let conversationId = "";
  /** The authoritative log of the conversation once both replies are done. */
  let log: Envelope[] = [];
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    d = await startDeployment({
      mode,
      edges: 2,
      workers: 2,
      projectors: 1,
      // Replies of a few hundred milliseconds: short runs, yet long enough to cut one midway.
      env: { SIM_TOKENS_PER_SEC: "100", SIM_MAX_TOKENS: "24" },
    });
    A = d.edges[0]!.url;
    B = d.edges[1]!.url;
    token = await mintToken({ ...who, tier: "registered" });
  });

  afterAll(async () => {
    for (const c of closers) c();
    await d?.stop();
  });

  it("runs the whole chat flow: every client on either node sees the same events, in order, once", async () => {
    const created = await http(`${A}/v1/conversations`, token, { body: { title: "e2e" } });
    expect(created.status).toBe(201);
    conversationId = created.json.id as string;

    // Socket.IO with default options (polling, then the upgrade) on A; WebSocket only on B.
    const sioA = new SioClient(A, { auth: { token } });
    const sioB = new SioClient(B, { auth: { token }, transports: ["websocket"] });
    closers.push(() => sioA.close(), () => sioB.close());
    await Promise.all([sioA.connected(), sioB.connected()]);
    expect(sioB.socket.io.engine.transport.name).toBe("websocket");
    await waitFor(() => expect(sioA.socket.io.engine.transport.name).toBe("websocket"));
    for (const c of [sioA, sioB]) expect(await c.emit("subscribe", { conversationId, from: "0" })).toMatchObject({ ok: true });

    // SSE on both nodes, from the beginning: the token in the header on A, in the query on B.
    const sseA = new SseClient(`${A}/v1/conversations/${conversationId}/events?from=0`, { token, via: "header" });
    const sseB = new SseClient(`${B}/v1/conversations/${conversationId}/events?from=0`, { token, via: "query" });
    closers.push(() => sseA.close(), () => sseB.close());

    // First message over HTTP on B.
    const first = await http(`${B}/v1/conversations/${conversationId}/messages`, token, { body: { text: "hello there", clientMessageId: "m1" } });
    expect(first.status).toBe(201);
    const reply1 = first.json.replyId as string;
    await waitFor(() => {
      for (const c of [sioA, sioB]) expect(c.got.some(terminalFor(reply1))).toBe(true);
      for (const c of [sseA, sseB]) expect(c.got.some(terminalFor(reply1))).toBe(true);
    });

    // Second message through Socket.IO chat_message on A (the reply is done, so no 409).
    const second = await sioA.emit("chat_message", { conversationId, text: "and again", clientMessageId: "m2", maxTokens: 8 });
    expect(second).toMatchObject({ ok: true, messageId: expect.any(String), replyId: expect.any(String), offset: expect.any(String) });
    const reply2 = second.replyId as string;
    // A repeat of the same clientMessageId answers the first answer (CONTRACT §3), over either transport.
    expect(await sioB.emit("chat_message", { conversationId, text: "and again", clientMessageId: "m2", maxTokens: 8 })).toMatchObject({
      ok: true,
      messageId: second.messageId,
      replyId: reply2,
    });
    await waitFor(() => {
      for (const c of [sioA, sioB]) expect(c.got.some(terminalFor(reply2))).toBe(true);
      for (const c of [sseA, sseB]) expect(c.got.some(terminalFor(reply2))).toBe(true);
    });

    // The log as the API serves it (JSON pages) is the reference.
    const page = await http(`${A}/v1/conversations/${conversationId}/events?format=json&from=0&limit=1000`, token);
    expect(page.status).toBe(200);
    log = page.json.events as Envelope[];
    expect(log.map((e) => e.version)).toEqual(log.map((_, i) => i + 1));
    expect(log.filter((e) => e.type === "message.received")).toHaveLength(2);
    const offsets = log.map((e) => e.offset);
    // Unsubscribing is acknowledged after every frame sent before it: nothing can still be in flight.
    for (const c of [sioA, sioB]) expect(await c.emit("unsubscribe", { conversationId })).toEqual({ ok: true });
    for (const c of [sioA, sioB]) {
      expect(c.offsetsOf(conversationId)).toEqual(offsets);
      expect(c.got.map((g) => g.env)).toEqual(log);
    }
    for (const c of [sseA, sseB]) {
      expect(c.offsets()).toEqual(offsets);
      expect(c.got.map((g) => g.id)).toEqual(offsets);
      expect(c.got.map((g) => g.env)).toEqual(log);
    }
    // Each reply streamed deltas indexed 0.. without gaps, and its completed text is their concatenation.
    for (const replyId of [reply1, reply2]) {
      const deltas = log.filter((e) => e.type === "assistant.delta" && (e.data as { messageId: string }).messageId === replyId);
      expect(deltas.length).toBeGreaterThan(0);
      expect(deltas.map((e) => (e.data as { index: number }).index)).toEqual(deltas.map((_, i) => i));
      const done = log.find((e) => terminalFor(replyId)({ env: e }))!;
      expect((done.data as { text: string }).text).toBe(deltas.map((e) => (e.data as { text: string }).text).join(""));
    }

    // The read model catches up: both replies completed, with their text, on either node.
    for (const url of [A, B]) {
      await waitFor(async () => {
        const r = await http(`${url}/v1/conversations/${conversationId}`, token);
        expect(r.status).toBe(200);
        const messages = r.json.messages as Array<{ id: string; role: string; status: string; text: string }>;
        expect(messages.map((m) => [m.role, m.status])).toEqual([
          ["user", "received"],
          ["assistant", "completed"],
          ["user", "received"],
          ["assistant", "completed"],
        ]);
        for (const replyId of [reply1, reply2]) {
          const done = log.find((e) => terminalFor(replyId)({ env: e }))!;
          expect(messages.find((m) => m.id === replyId)?.text).toBe((done.data as { text: string }).text);
        }
      });
    }

    // Both edges delivered live events and so observed their lag.
    for (const url of [A, B]) {
      const metrics = (await http(`${url}/metrics`, undefined)).text;
      const count = /^tributary_edge_delivery_lag_ms_count\{transport="fanout"\} (\d+)$/m.exec(metrics);
      expect(Number(count?.[1] ?? 0)).toBeGreaterThan(0);
    }
  });

  it("resumes from every offset of the conversation: exactly the later events, in order, once", async () => {
    expect(log.length).toBeGreaterThan(4);
    const offsets = log.map((e) => e.offset);
    const last = offsets.at(-1)!;
    const sio = [A, B].map((url) => new SioClient(url, { auth: { token }, transports: ["websocket"] }));
    closers.push(...sio.map((c) => () => c.close()));
    await Promise.all(sio.map((c) => c.connected()));

    for (const [i, from] of ["0", ...offsets].entries()) {
      const expected = offsets.slice(offsets.indexOf(from) + 1);
      const url = i % 2 === 0 ? A : B;
      const other = i % 2 === 0 ? B : A;
      const events = `/v1/conversations/${conversationId}/events`;
      // SSE resumed by Last-Event-ID (what a reconnecting EventSource sends) and by ?from=.
      const byHeader = new SseClient(`${url}${events}`, { token, via: "header", lastEventId: from });
      const byQuery = new SseClient(`${other}${events}?from=${from}`, { token, via: "query" });
      // Socket.IO subscribe {from} on each node.
      const before = sio.map((c) => c.got.length);
      const acks = await Promise.all(sio.map((c) => c.emit("subscribe", { conversationId, from })));
      for (const ack of acks) expect(ack).toEqual({ ok: true, offset: last });
      try {
        await waitFor(() => {
          if (expected.length > 0) {
            expect(byQuery.offsets().at(-1)).toBe(last);
            expect(byHeader.offsets().at(-1)).toBe(last);
            for (const [k, c] of sio.entries()) expect(c.got.slice(before[k]).at(-1)?.offset).toBe(last);
          }
        });
        for (const c of sio) expect(await c.emit("unsubscribe", { conversationId })).toEqual({ ok: true });
        expect(byQuery.offsets()).toEqual(expected);
        expect(byQuery.got.map((g) => g.id)).toEqual(expected);
        expect(byHeader.offsets()).toEqual(expected);
        for (const [k, c] of sio.entries()) expect(c.got.slice(before[k]).map((g) => g.offset)).toEqual(expected);
      } finally {
        byHeader.close();
        byQuery.close();
      }
    }
  });

  it("answers 404 NOT_FOUND to another tenant (and another user) on every node and transport", async () => {
    const foreignTenant = await mintToken({ sub: who.sub, tid: `${who.tid}-other` });
    const sameTenantOtherUser = await mintToken({ sub: `${who.sub}-other`, tid: who.tid });
    for (const t of [foreignTenant, sameTenantOtherUser]) {
      for (const url of [A, B]) {
        for (const path of [`/v1/conversations/${conversationId}`, `/v1/conversations/${conversationId}/events?format=json&from=0`]) {
          const r = await http(`${url}${path}`, t);
          expect(r.status).toBe(404);
          expect(r.json.error.code).toBe("NOT_FOUND");
        }
        const post = await http(`${url}/v1/conversations/${conversationId}/messages`, t, { body: { text: "x", clientMessageId: "z1" } });
        expect(post.status).toBe(404);
        expect(post.json.error.code).toBe("NOT_FOUND");
        const cancel = await http(`${url}/v1/conversations/${conversationId}/cancel`, t, { method: "POST" });
        expect(cancel.status).toBe(404);
        const sse = await fetch(`${url}/v1/conversations/${conversationId}/events?from=0`, { headers: { authorization: `Bearer ${t}` } });
        expect(sse.status).toBe(404);
        await sse.body?.cancel();
        const list = await http(`${url}/v1/conversations`, t);
        expect(list.status).toBe(200);
        expect((list.json.items as Array<{ id: string }>).map((c) => c.id)).not.toContain(conversationId);

        const c = new SioClient(url, { auth: { token: t }, transports: ["websocket"] });
        try {
          await c.connected();
          const notFound = { ok: false, error: { code: "NOT_FOUND", message: expect.any(String) } };
          expect(await c.emit("subscribe", { conversationId, from: "0" })).toEqual(notFound);
          expect(await c.emit("chat_message", { conversationId, text: "x", clientMessageId: "z2" })).toEqual(notFound);
          expect(await c.emit("cancel", { conversationId })).toEqual(notFound);
          expect(c.got).toEqual([]);
        } finally {
          c.close();
        }
      }
    }
    // Nothing they tried reached the conversation.
    const page = await http(`${A}/v1/conversations/${conversationId}/events?format=json&from=0&limit=1000`, token);
    expect(page.json.events).toEqual(log);
  });

  it("resumes a reply cut while it streams on the other node: SSE by Last-Event-ID, Socket.IO by recovery", async () => {
    const since = log.at(-1)!.offset;
    const sse1 = new SseClient(`${A}/v1/conversations/${conversationId}/events?from=${since}`, { token, via: "header" });
    closers.push(() => sse1.close());
    const sio = new SioClient(A, { auth: { token }, transports: ["websocket"], reconnectionDelay: 50, reconnectionDelayMax: 200 });
    closers.push(() => sio.close());
    await sio.connected();
    expect(await sio.emit("subscribe", { conversationId, from: since })).toEqual({ ok: true, offset: since });

    const posted = await http(`${A}/v1/conversations/${conversationId}/messages`, token, { body: { text: "cut me", clientMessageId: "m3" } });
    expect(posted.status).toBe(201);
    const replyId = posted.json.replyId as string;
    const deltas = (got: Array<{ env: Envelope }>) => got.filter((g) => g.env.type === "assistant.delta").length;

    // Cut both once a few deltas are in (wherever the reply is by then, the resume must be exact).
    await waitFor(() => expect(deltas(sse1.got)).toBeGreaterThanOrEqual(2));
    sse1.close();
    const lastSeen = sse1.got.at(-1)!.id;
    const sse2 = new SseClient(`${B}/v1/conversations/${conversationId}/events`, { token, via: "query", lastEventId: lastSeen });
    closers.push(() => sse2.close());

    await waitFor(() => expect(deltas(sio.got)).toBeGreaterThanOrEqual(2));
    // The next connection goes to the other node; the session record travels through Redis.
    (sio.socket.io as unknown as { uri: string }).uri = B;
    const dropped = new Promise<void>((res) => sio.socket.once("disconnect", () => res()));
    const reconnected = dropped.then(() => new Promise<void>((res) => sio.socket.once("connect", () => res())));
    sio.socket.io.engine.close();
    await reconnected;
    expect(sio.socket.recovered).toBe(true);

    await waitFor(() => {
      expect(sse2.got.some(terminalFor(replyId))).toBe(true);
      expect(sio.got.some(terminalFor(replyId))).toBe(true);
    });
    const page = await http(`${B}/v1/conversations/${conversationId}/events?format=json&from=${since}&limit=1000`, token);
    const after = (page.json.events as Envelope[]).map((e) => e.offset);
    expect(sio.offsetsOf(conversationId)).toEqual(after);
    expect([...sse1.offsets(), ...sse2.offsets()]).toEqual(after);
    expect(sse2.offsets()[0]).not.toBe(lastSeen);
    if (process.env.E2E_DEBUG) console.log(`cut SSE after ${sse1.got.length} of ${after.length} events`);
  });

  it("answers /v1/quota with the caller's tier, also for a ledger never used", async () => {
    await waitFor(async () => {
      const used = await http(`${B}/v1/quota`, token);
      expect(used.status).toBe(200);
      expect(used.json).toMatchObject({ tier: "registered", limits: { dailyTokens: 200_000, maxConcurrent: 4 }, reserved: { tokens: 0 } });
      // Both replies settled: their input and output tokens are used.
      expect(used.json.used.tokens).toBeGreaterThan(0);
      expect(used.json.remaining.tokens).toBe(200_000 - used.json.used.tokens);
    });
    const expected = {
      anonymous: { dailyTokens: 20_000, maxConcurrent: 1 },
      registered: { dailyTokens: 200_000, maxConcurrent: 4 },
      privileged: { dailyTokens: 2_000_000, maxConcurrent: 16 },
    } as const;
    for (const tier of ["anonymous", "privileged"] as const) {
      const fresh = await mintToken({ ...randomIdentity(), tier });
      const q = await http(`${A}/v1/quota`, fresh);
      expect(q.status).toBe(200);
      expect(q.json).toMatchObject({ tier, limits: expected[tier], used: { tokens: 0 }, remaining: { tokens: expected[tier].dailyTokens } });
    }
  });
});
