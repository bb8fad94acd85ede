import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { testRedis } from "../support/redis.js";
import { mintToken, randomIdentity } from "../support/tokens.js";
import { Client, Conversation, startEdge, type SioEdge } from "./socketio-support.js";

/**
 * The stock socket.io-client v4 against our Socket.IO server on uWS, real Redis and fan-out:
 * CONTRACT §6 with default options (polling → WebSocket upgrade) and `transports:["websocket"]`.
 */
const waitFor = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 20_000, interval: 10 });

let edge: SioEdge;
const clients: Client[] = [];

beforeAll(async () => {
  edge = await startEdge();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await edge.close();
});

async function user(opts: { ttlSeconds?: number; roles?: string[] } = {}) {
  const ident = randomIdentity();
  const token = await mintToken({ ...ident, ...opts });
  return { ...ident, token };
}

function client(token: string | undefined, transports?: string[], extra: Record<string, unknown> = {}): Client {
  const c = new Client(edge.url, { auth: token === undefined ? {} : { token }, ...(transports ? { transports } : {}), ...extra });
  clients.push(c);
  return c;
}

const MODES: Array<[string, string[] | undefined]> = [
  ["default options (polling, then upgrade)", undefined],
  ["transports: [websocket]", ["websocket"]],
  ["transports: [polling] (never upgrades)", ["polling"]],
];

describe.each(MODES)("Socket.IO with %s", (_name, transports) => {
  it("connects with a good token and answers CONNECT_ERROR with the code otherwise", async () => {
    const u = await user();
    const ok = client(u.token, transports);
    await ok.connected();
    expect(ok.socket.id).toBeTruthy();
    if (!transports) await waitFor(() => expect(ok.socket.io.engine.transport.name).toBe("websocket"));

    const bad = client("not-a-jwt", transports, { reconnection: false });
    await expect(bad.connected()).rejects.toMatchObject({ message: "UNAUTHENTICATED" });
    const none = client(undefined, transports, { reconnection: false });
    await expect(none.connected()).rejects.toMatchObject({ message: "UNAUTHENTICATED" });
    const expired = client(await mintToken({ ttlSeconds: -10 }), transports, { reconnection: false });
    await expect(expired.connected()).rejects.toMatchObject({ message: "UNAUTHENTICATED" });
    // The Authorization header (extraHeaders) works as well as auth.token.
    const viaHeader = client(undefined, transports, { extraHeaders: { authorization: `Bearer ${u.token}` } });
    await viaHeader.connected();
    ok.close();
    viaHeader.close();
  });

  it("subscribe from 0 and from a middle offset: exactly the later events in order, then live", async () => {
    const u = await user();
    const conv = await new Conversation(edge.store, u.tid, u.sub).create();
    await conv.deltas(5);
    const c = client(u.token, transports);
    await c.connected();
    const all = await c.emit<{ ok: boolean; offset: string }>("subscribe", { conversationId: conv.id, from: "0" });
    expect(all).toEqual({ ok: true, offset: conv.offsets[5] });
    await waitFor(() => expect(c.offsetsOf(conv.id)).toEqual(conv.offsets));

    const c2 = client(u.token, transports);
    await c2.connected();
    const mid = conv.offsets[2] as string;
    expect(await c2.emit("subscribe", { conversationId: conv.id, from: mid })).toEqual({ ok: true, offset: conv.offsets[5] });
    await waitFor(() => expect(c2.offsetsOf(conv.id)).toEqual(conv.offsets.slice(3)));

    if (!transports) {
      // A subscription made while polling moves to the native uWS topic once the upgrade is done.
      await waitFor(() => expect(c.socket.io.engine.transport.name).toBe("websocket"));
      await waitFor(() => expect(edge.app.numSubscribers(edge.fanout.topic(conv.id, "sio"))).toBeGreaterThanOrEqual(1));
    }
    const c3 = client(u.token, transports);
    await c3.connected();
    // No `from`: live from now.
    expect(await c3.emit("subscribe", { conversationId: conv.id })).toEqual({ ok: true, offset: conv.offsets[5] });

    const live = await conv.deltas(4);
    await waitFor(() => expect(c.offsetsOf(conv.id)).toEqual(conv.offsets));
    await waitFor(() => expect(c2.offsetsOf(conv.id)).toEqual(conv.offsets.slice(3)));
    await waitFor(() => expect(c3.offsetsOf(conv.id)).toEqual(live));
    // The envelope is CONTRACT §4's, and the offset argument equals the envelope's offset.
    const e = c.events.at(-1);
    expect(e?.env).toMatchObject({ conversationId: conv.id, offset: live[3], version: 10, type: "assistant.delta" });
    expect(e?.offset).toBe(e?.env.offset);

    expect(await c.emit("unsubscribe", { conversationId: conv.id })).toEqual({ ok: true });
    await conv.deltas(1);
    await waitFor(() => expect(c2.offsetsOf(conv.id).length).toBe(conv.offsets.length - 3));
    expect(c.offsetsOf(conv.id).length).toBe(conv.offsets.length - 1);
    for (const x of [c, c2, c3]) x.close();
  });

  it("acknowledges every event, failures as {ok:false, error:{code, message}}", async () => {
    const u = await user();
    const other = await user();
    const mine = await new Conversation(edge.store, u.tid, u.sub).create();
    const foreign = await new Conversation(edge.store, other.tid, other.sub).create();
    const c = client(u.token, transports);
    await c.connected();

    const notFound = { ok: false, error: { code: "NOT_FOUND", message: expect.any(String) } };
    expect(await c.emit("subscribe", { conversationId: foreign.id })).toEqual(notFound);
    expect(await c.emit("subscribe", { conversationId: "c-does-not-exist" })).toEqual(notFound);
    expect(await c.emit("chat_message", { conversationId: foreign.id, text: "hi", clientMessageId: "a1" })).toEqual(notFound);
    expect(await c.emit("cancel", { conversationId: foreign.id })).toEqual(notFound);

    const invalid = { ok: false, error: { code: "VALIDATION_FAILED", message: expect.any(String) } };
    expect(await c.emit("subscribe", { conversationId: 42 })).toEqual(invalid);
    expect(await c.emit("subscribe", { conversationId: mine.id, from: "yesterday" })).toEqual(invalid);
    expect(await c.emit("chat_message", { conversationId: mine.id, text: "", clientMessageId: "a1" })).toEqual(invalid);
    expect(await c.emit("chat_message", { conversationId: mine.id, text: "x", clientMessageId: "bad id!" })).toEqual(invalid);
    expect(await c.emit("chat_message", { conversationId: mine.id, text: "x", clientMessageId: "a", extra: 1 })).toEqual(invalid);
    expect(await c.emit("chat_message", "not an object")).toEqual(invalid);

    expect(await c.emit("chat_message", { conversationId: mine.id, text: "hello", clientMessageId: "a1", maxTokens: 16 })).toEqual({
      ok: true,
      messageId: "m-a1",
      replyId: "r-a1",
      offset: "1-0",
    });
    expect(edge.commands.posted.at(-1)).toMatchObject({ conversationId: mine.id, tenantId: u.tid, userId: u.sub, text: "hello", maxTokens: 16 });
    expect(await c.emit("chat_message", { conversationId: mine.id, text: "slow", clientMessageId: "a2" })).toEqual({
      ok: true,
      commandId: "cmd-1",
      status: "pending",
    });
    expect(await c.emit("chat_message", { conversationId: mine.id, text: "conflict", clientMessageId: "a3" })).toEqual({
      ok: false,
      error: { code: "CONFLICT", message: "a reply is running" },
    });
    expect(await c.emit("cancel", { conversationId: mine.id })).toMatchObject({ ok: true });
    expect(await c.emit("unsubscribe", { conversationId: mine.id })).toEqual({ ok: true });
    expect(await c.emit("no_such_event", {})).toEqual({ ok: false, error: { code: "BAD_REQUEST", message: expect.any(String) } });
    // Without an ack id an unknown event is ignored, and the connection carries on.
    c.socket.emit("no_such_event", {});
    expect(await c.emit("unsubscribe", { conversationId: mine.id })).toEqual({ ok: true });
    c.close();
  });

  it("recovers a dropped transport: recovered === true, both subscriptions back, missed events once", async () => {
    const u = await user();
    const a = await new Conversation(edge.store, u.tid, u.sub).create();
    const b = await new Conversation(edge.store, u.tid, u.sub).create();
    await a.deltas(2);
    const c = client(u.token, transports);
    await c.connected();
    if (!transports) await waitFor(() => expect(c.socket.io.engine.transport.name).toBe("websocket"));
    expect(await c.emit("subscribe", { conversationId: a.id, from: "0" })).toMatchObject({ ok: true });
    expect(await c.emit("subscribe", { conversationId: b.id })).toMatchObject({ ok: true });
    await b.deltas(2);
    await a.deltas(1);
    await waitFor(() => expect(c.offsetsOf(a.id)).toEqual(a.offsets));
    await waitFor(() => expect(c.offsetsOf(b.id)).toEqual(b.offsets.slice(1)));

    // Drop the transport; append to both conversations while the client is away.
    const disconnected = c.dropTransport();
    await disconnected.dropped;
    await a.deltas(3);
    await b.deltas(2);
    await disconnected.reconnected;
    expect(c.socket.recovered).toBe(true);
    await b.deltas(1);
    await waitFor(() => expect(c.offsetsOf(a.id)).toEqual(a.offsets));
    await waitFor(() => expect(c.offsetsOf(b.id)).toEqual(b.offsets.slice(1)));

    // And again, this time with nothing received in between (the client resends the same offset).
    const again = c.dropTransport();
    await again.dropped;
    await a.deltas(1);
    await again.reconnected;
    expect(c.socket.recovered).toBe(true);
    await b.deltas(1);
    await waitFor(() => expect(c.offsetsOf(a.id)).toEqual(a.offsets));
    await waitFor(() => expect(c.offsetsOf(b.id)).toEqual(b.offsets.slice(1)));
    c.close();
  });
});

describe.each(MODES)("Socket.IO recovery under load with %s", (_name, transports) => {
  it("drops the transport again and again while two conversations stream: every event exactly once, in order", async () => {
    const u = await user();
    const a = await new Conversation(edge.store, u.tid, u.sub).create();
    const b = await new Conversation(edge.store, u.tid, u.sub).create();
    const c = client(u.token, transports);
    await c.connected();
    await c.emit("subscribe", { conversationId: a.id, from: "0" });
    await c.emit("subscribe", { conversationId: b.id, from: "0" });
    let recoveries = 0;
    c.socket.on("connect", () => {
      if (c.socket.recovered) recoveries++;
    });
    // Both conversations append concurrently (same-millisecond appends are frequent: before the
    // append script chose unique ids they shared offsets), while the transport is cut whenever the
    // client has seen a few more events.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 150; i++) await Promise.all([a.deltas(1), b.deltas(1)]);
      writing = false;
    })();
    let cuts = 0;
    while (writing && cuts < 8) {
      const seen = c.events.length;
      await waitFor(() => expect(c.events.length > seen + 5 || !writing).toBe(true));
      if (!writing || !c.socket.connected) continue;
      const back = new Promise<void>((res) => c.socket.once("connect", () => res()));
      c.socket.io.engine.close();
      cuts++;
      await back;
      expect(c.socket.recovered).toBe(true);
    }
    await writer;
    // An offset names one event of the deployment (docs/event-store.md, "Entry ids")…
    expect(a.offsets.filter((o) => b.offsets.includes(o))).toEqual([]);
    // …so recovery is exact on every transport, WebSocket included: no gap, no repeat, in order.
    await waitFor(() => expect(c.offsetsOf(a.id)).toEqual(a.offsets));
    await waitFor(() => expect(c.offsetsOf(b.id)).toEqual(b.offsets));
    expect(recoveries).toBe(cuts);
    expect(cuts).toBeGreaterThan(0);
    c.close();
  });
});

describe("Socket.IO sessions", () => {
  it("recovers on a 3-master Redis Cluster too", async () => {
    const cr = await testRedis("cluster");
    const onCluster = await startEdge({}, cr);
    try {
      const u = await user();
      const a = await new Conversation(onCluster.store, u.tid, u.sub).create();
      const b = await new Conversation(onCluster.store, u.tid, u.sub).create();
      const c = new Client(onCluster.url, { auth: { token: u.token } });
      await c.connected();
      await c.emit("subscribe", { conversationId: a.id, from: "0" });
      await c.emit("subscribe", { conversationId: b.id, from: "0" });
      await waitFor(() => expect(c.events.length).toBe(2));
      const dropped = c.dropTransport();
      await dropped.dropped;
      await a.deltas(3);
      await b.deltas(2);
      await dropped.reconnected;
      expect(c.socket.recovered).toBe(true);
      await waitFor(() => expect(c.offsetsOf(a.id)).toEqual(a.offsets));
      await waitFor(() => expect(c.offsetsOf(b.id)).toEqual(b.offsets));
      c.close();
    } finally {
      await onCluster.close();
      await cr.cleanup();
    }
  });

  it("a session dropped on one edge node is recovered on another", async () => {
    const other = await startEdge({}, edge.r);
    try {
      const u = await user();
      const a = await new Conversation(edge.store, u.tid, u.sub).create();
      const b = await new Conversation(edge.store, u.tid, u.sub).create();
      const c = client(u.token, ["websocket"]);
      await c.connected();
      await c.emit("subscribe", { conversationId: a.id, from: "0" });
      await c.emit("subscribe", { conversationId: b.id, from: "0" });
      await a.deltas(2);
      await b.deltas(2);
      await waitFor(() => expect(c.offsetsOf(a.id)).toEqual(a.offsets));
      await waitFor(() => expect(c.offsetsOf(b.id)).toEqual(b.offsets));
      // The next reconnection goes to the other node.
      (c.socket.io as unknown as { uri: string }).uri = other.url;
      const disconnected = c.dropTransport();
      await disconnected.dropped;
      await a.deltas(2);
      await b.deltas(1);
      await disconnected.reconnected;
      expect(c.socket.recovered).toBe(true);
      expect(edge.sio.connections()).toBe(0);
      expect(other.sio.connections()).toBe(1);
      await a.deltas(1);
      await waitFor(() => expect(c.offsetsOf(a.id)).toEqual(a.offsets));
      await waitFor(() => expect(c.offsetsOf(b.id)).toEqual(b.offsets));
      c.close();
    } finally {
      await other.close();
    }
  });

  it("a session is never recovered by another user's token", async () => {
    const u = await user();
    const thief = await user();
    const conv = await new Conversation(edge.store, u.tid, u.sub).create();
    const c = client(u.token, ["websocket"]);
    await c.connected();
    await c.emit("subscribe", { conversationId: conv.id, from: "0" });
    await waitFor(() => expect(c.offsetsOf(conv.id).length).toBe(1));
    // Swap the token before the reconnection: the pid is the victim's, the token the thief's.
    c.socket.auth = { token: thief.token };
    const victimPid = (c.socket as unknown as { _pid: string })._pid;
    const disconnected = c.dropTransport();
    await disconnected.dropped;
    await disconnected.reconnected;
    expect(c.socket.recovered).toBe(false);
    // The victim's record is untouched: the victim can still recover it.
    expect(await edge.r.client.get(`sio:session:${victimPid}`)).toContain(u.sub);
    await conv.deltas(2);
    // Nothing of the victim's conversation reaches the new session.
    expect(await c.emit("unsubscribe", { conversationId: conv.id })).toEqual({ ok: true });
    expect(c.offsetsOf(conv.id).length).toBe(1);
    c.close();
  });

  it("opens, resumes and closes the session actor through the hooks", async () => {
    const calls: string[] = [];
    const hooked = await startEdge({}, undefined, () => ({
      sessions: {
        opened: async (x) => void calls.push(`opened:${x.principal.userId}:${x.transport}`),
        resumed: async (x) => void calls.push(`resumed:${x.principal.userId}`),
        closed: async (x) => void calls.push(`closed:${x.recoverable}`),
      },
    }));
    try {
      const u = await user();
      const c = new Client(hooked.url, { auth: { token: u.token }, transports: ["websocket"] });
      await c.connected();
      const dropped = c.dropTransport();
      await dropped.dropped;
      await dropped.reconnected;
      expect(c.socket.recovered).toBe(true);
      c.socket.disconnect();
      await waitFor(() => expect(calls).toEqual([`opened:${u.sub}:websocket`, "closed:true", `resumed:${u.sub}`, "closed:false"]));
    } finally {
      await hooked.close();
    }
  });

  it("disconnects when the token expires during the connection", async () => {
    const u = await user({ ttlSeconds: 2 });
    const c = client(u.token, ["websocket"], { reconnection: false });
    await c.connected();
    const reason = await new Promise<string>((res) => c.socket.once("disconnect", (r) => res(r)));
    expect(reason).toBe("io server disconnect");
  });
});
