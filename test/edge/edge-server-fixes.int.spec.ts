import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { keys } from "../../core/keys.js";
import { partitionOf } from "../../core/partition.js";
import { call, startHttpEdge, type HttpEdgeHarness } from "../support/http-edge.js";
import { mintToken, randomIdentity } from "../support/tokens.js";
import { Client, Conversation } from "./socketio-support.js";

/**
 * The edge server's wiring (edge/server.ts) with Socket.IO and SSE on: chat_message passes the same
 * gateway as HTTP (backlog, owner-only), the delivery-lag histogram is fed by the fan-out, and
 * close() leaves every Socket.IO session record in Redis before it resolves.
 */
const waitFor = <T>(fn: () => T | Promise<T>) => vi.waitFor(fn, { timeout: 20_000, interval: 20 });
const MAX_BACKLOG = 2;

let h: HttpEdgeHarness;
beforeAll(async () => {
  h = await startHttpEdge({ socketIo: true, sse: true, gateway: { maxBacklog: MAX_BACKLOG } });
});
afterAll(async () => {
  await h?.stop();
});

describe("Socket.IO chat_message through the gateway", () => {
  it("answers OVERLOADED like HTTP when the partition's command backlog is over the limit", async () => {
    const who = randomIdentity();
    const token = await mintToken(who);
    const conv = await new Conversation(h.store, who.tid, who.sub).create();
    const c = new Client(h.url, { auth: { token }, transports: ["websocket"] });
    try {
      await c.connected();
      // No worker group on this stream: the backlog is its length. Filled before this partition's
      // backlog is first measured (the gateway caches the figure briefly).
      const stream = keys.cmd(partitionOf(conv.id, h.config.PARTITIONS));
      for (let i = 0; i <= MAX_BACKLOG; i++) await h.redis.client.xadd(stream, "*", "x", "1");
      expect(await c.emit("chat_message", { conversationId: conv.id, text: "hi", clientMessageId: "a1" })).toEqual({
        ok: false,
        error: { code: "OVERLOADED", message: expect.any(String) },
      });
      const http = await call(`${h.url}/v1/conversations/${conv.id}/messages`, { token, body: { text: "hi", clientMessageId: "a1" } });
      expect(http.status).toBe(503);
      expect(http.json.error.code).toBe("OVERLOADED");
      const posted = () => h.fakes.calls.filter((x) => x.method === "postMessage").map((x) => (x.input as { clientMessageId: string }).clientMessageId);
      // Refused, so never handed to the command side.
      expect(posted()).toEqual([]);
      // Once the backlog is gone the same message is admitted.
      await h.redis.client.del(stream);
      await waitFor(async () => expect(await c.emit("chat_message", { conversationId: conv.id, text: "hi", clientMessageId: "a1" })).toMatchObject({ ok: true }));
      expect(posted()).toEqual(["a1"]);
    } finally {
      c.close();
    }
  });

  it("lets an auditor follow but not post or cancel in another user's conversation (as HTTP)", async () => {
    const who = randomIdentity();
    const conv = await new Conversation(h.store, who.tid, who.sub).create();
    const auditor = await mintToken({ sub: "someone-else", tid: who.tid, roles: ["auditor"] });
    const c = new Client(h.url, { auth: { token: auditor }, transports: ["websocket"] });
    try {
      await c.connected();
      expect(await c.emit("subscribe", { conversationId: conv.id, from: "0" })).toMatchObject({ ok: true });
      expect(await c.emit("chat_message", { conversationId: conv.id, text: "hi", clientMessageId: "b1" })).toEqual({
        ok: false,
        error: { code: "FORBIDDEN", message: expect.any(String) },
      });
      expect(await c.emit("cancel", { conversationId: conv.id })).toEqual({ ok: false, error: { code: "FORBIDDEN", message: expect.any(String) } });
    } finally {
      c.close();
    }
  });
});

describe("delivery lag metric", () => {
  it("observes each live event once in tributary_edge_delivery_lag_ms", async () => {
    const who = randomIdentity();
    const token = await mintToken(who);
    const conv = await new Conversation(h.store, who.tid, who.sub).create();
    const c = new Client(h.url, { auth: { token }, transports: ["websocket"] });
    const count = async () => {
      const text = (await call(`${h.url}/metrics`)).text;
      const m = /^tributary_edge_delivery_lag_ms_count\{transport="fanout"\} (\d+)$/m.exec(text);
      return m ? Number(m[1]) : 0;
    };
    try {
      await c.connected();
      const before = await count();
      expect(await c.emit("subscribe", { conversationId: conv.id })).toMatchObject({ ok: true });
      const offsets = await conv.deltas(3);
      await waitFor(() => expect(c.offsetsOf(conv.id)).toEqual(offsets));
      expect((await count()) - before).toBe(3);
    } finally {
      c.close();
    }
  });
});

describe("close()", () => {
  it("resolves only after the session records written at shutdown are in Redis", async () => {
    const who = randomIdentity();
    const token = await mintToken(who);
    const conv = await new Conversation(h.store, who.tid, who.sub).create();
    const c = new Client(h.url, { auth: { token }, transports: ["websocket"], reconnection: false });
    try {
      await c.connected();
      expect(await c.emit("subscribe", { conversationId: conv.id, from: "0" })).toMatchObject({ ok: true });
      await waitFor(() => expect(c.offsetsOf(conv.id)).toEqual(conv.offsets));
      // The stock client learns its session id (pid) from the CONNECT packet.
      const pid = (c.socket as unknown as { _pid?: string })._pid;
      expect(pid).toBeTruthy();
      expect(await h.redis.client.exists(`sio:session:${pid}`)).toBe(0);
      await h.server.close();
      // Read on another connection, as another node would.
      const other = h.redis.duplicate();
      const rec = JSON.parse((await other.get(`sio:session:${pid}`)) ?? "null") as { pid: string; tenantId: string } | null;
      expect(rec).toMatchObject({ pid, tenantId: who.tid });
    } finally {
      c.close();
    }
  });
});
