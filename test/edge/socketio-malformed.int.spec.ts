import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { createRateLimiter } from "../../edge/gateway/rate-limit.js";
import { mintToken, randomIdentity } from "../support/tokens.js";
import { Client, Conversation, startEdge, type SioEdge } from "./socketio-support.js";

/**
 * Bad input never crashes the process and never affects other clients: malformed Engine.IO and
 * Socket.IO packets over raw WebSocket and raw HTTP long-polling (fast-check fuzzing included),
 * oversized payloads, protocol violations, floods, and a slow polling client over its bound (I7).
 */
const waitFor = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 20_000, interval: 10 });

let edge: SioEdge;
let token: string;
let ident: { sub: string; tid: string };
const MAX_PAYLOAD = 10_000;

beforeAll(async () => {
  edge = await startEdge({ maxPayload: MAX_PAYLOAD, maxPollingBufferBytes: 8_000 });
  ident = randomIdentity();
  token = await mintToken(ident);
});
afterAll(async () => {
  await edge.close();
});

const base = () => `${edge.url}/socket.io/`;

async function handshake(): Promise<string> {
  const res = await fetch(`${base()}?EIO=4&transport=polling`);
  expect(res.status).toBe(200);
  const body = await res.text();
  expect(body.startsWith("0{")).toBe(true);
  const open = JSON.parse(body.slice(1)) as { sid: string; upgrades: string[]; pingInterval: number; pingTimeout: number; maxPayload: number };
  expect(open.upgrades).toEqual(["websocket"]);
  expect(open.maxPayload).toBe(MAX_PAYLOAD);
  return open.sid;
}

const poll = (sid: string) => fetch(`${base()}?EIO=4&transport=polling&sid=${sid}`);
const post = (sid: string, body: string | Uint8Array) =>
  fetch(`${base()}?EIO=4&transport=polling&sid=${sid}`, { method: "POST", body, headers: { "content-type": "text/plain;charset=UTF-8" } });

/** A session is gone when a GET on it answers 400 "Session ID unknown". */
async function gone(sid: string): Promise<boolean> {
  const res = await poll(sid);
  if (res.status !== 400) {
    await res.text();
    return false;
  }
  return ((await res.json()) as { code: number }).code === 1;
}

/** A stock client still gets through: connect, subscribe, receive. */
async function healthy(): Promise<void> {
  const conv = await new Conversation(edge.store, ident.tid, ident.sub).create();
  const c = new Client(edge.url, { auth: { token }, transports: ["websocket"] });
  try {
    await c.connected();
    expect(await c.emit("subscribe", { conversationId: conv.id, from: "0" })).toMatchObject({ ok: true });
    await waitFor(() => expect(c.offsetsOf(conv.id)).toEqual(conv.offsets));
  } finally {
    c.close();
  }
}

function openWs(): Promise<{ ws: WebSocket; messages: string[]; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${edge.port}/socket.io/?EIO=4&transport=websocket`);
    const messages: string[] = [];
    const closed = new Promise<number>((res) => ws.on("close", (code) => res(code)));
    ws.on("message", (m) => {
      messages.push(m.toString());
      if (messages.length === 1) resolve({ ws, messages, closed });
    });
    ws.on("error", reject);
  });
}

describe("Engine.IO over raw HTTP long-polling", () => {
  it("answers 400 with the Engine.IO error code to bad handshakes, sids and transports", async () => {
    const cases: Array<[string, number]> = [
      ["?transport=polling", 5],
      ["?EIO=3&transport=polling", 5],
      ["?EIO=4&transport=carrier-pigeon", 0],
      ["?EIO=4&transport=polling&sid=nope", 1],
    ];
    for (const [q, code] of cases) {
      const res = await fetch(`${base()}${q}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: number }).code).toBe(code);
    }
    const p = await fetch(`${base()}?EIO=4&transport=polling`, { method: "POST", body: "40" });
    expect(p.status).toBe(400);
    expect(((await p.json()) as { code: number }).code).toBe(2);
  });

  it("runs a whole session over polling: CONNECT, ack, concatenated payloads", async () => {
    const sid = await handshake();
    expect(await (await post(sid, `40${JSON.stringify({ token })}`)).text()).toBe("ok");
    const connect = await (await poll(sid)).text();
    expect(connect).toMatch(/^40\{"sid":"[^"]+","pid":"[^"]+"\}$/);
    // Two packets in one POST (record separator), both answered.
    const conv = await new Conversation(edge.store, ident.tid, ident.sub).create();
    await post(sid, `421["subscribe",{"conversationId":"${conv.id}"}]\x1e422["no_such_event"]`);
    let got = "";
    // Acks of concurrent events may come in either order.
    while (!got.includes("432[") || !got.includes("431[")) got += `\x1e${await (await poll(sid)).text()}`;
    expect(got).toContain(`431[{"ok":true,"offset":"${conv.offsets[0]}"}]`);
    expect(got).toContain(`432[{"ok":false,"error":{"code":"BAD_REQUEST"`);
    await post(sid, "1");
    await waitFor(async () => expect(await gone(sid)).toBe(true));
  });

  it("closes only the offending session on malformed payloads, oversized bodies and overlapping polls", async () => {
    const bad = ["", "zzz", "4", "9hello", "42[", '42["subscribe",', "4\x1e\x1e", "40/nope,{", "0", "5", '43abc["x"]', "b!!!not-base64"];
    for (const body of bad) {
      const sid = await handshake();
      await post(sid, `40${JSON.stringify({ token })}`);
      await (await poll(sid)).text();
      const res = await post(sid, body);
      await res.text();
      // Either the engine closed the session at once, or (Socket.IO layer) closed it after parsing.
      await waitFor(async () => expect([body, await gone(sid)]).toEqual([body, true]));
    }
    // Oversized: 413 and the session is closed.
    const sid = await handshake();
    const big = await post(sid, `4${"x".repeat(MAX_PAYLOAD + 1)}`);
    expect(big.status).toBe(413);
    await waitFor(async () => expect(await gone(sid)).toBe(true));
    // Overlapping GETs: the second is refused and the session closed.
    const sid2 = await handshake();
    const first = poll(sid2);
    await new Promise((r) => setImmediate(r));
    const second = await poll(sid2);
    expect([400, 200]).toContain(second.status);
    await (await first).text();
    await waitFor(async () => expect(await gone(sid2)).toBe(true));
    await healthy();
  });

  it("ignores an EVENT without payload ('42', '421'): no unhandled rejection, the session goes on", async () => {
    const sid = await handshake();
    await post(sid, `40${JSON.stringify({ token })}`);
    await (await poll(sid)).text();
    for (const body of ["42", "421"]) await (await post(sid, body)).text();
    // A later well-formed event with an ack is still answered on the same session.
    await (await post(sid, '4277["unsubscribe",{"conversationId":"c-x"}]')).text();
    // (The answer proves the session alive; `gone` would hold a poll open until the next ping.)
    await waitFor(async () => expect(await (await poll(sid)).text()).toContain('4377[{"ok":true}]'));
    await healthy();
  });

  it("an unknown namespace gets CONNECT_ERROR on that namespace", async () => {
    const sid = await handshake();
    await post(sid, `40/admin,${JSON.stringify({ token })}`);
    expect(await (await poll(sid)).text()).toBe('44/admin,{"message":"Invalid namespace"}');
    await post(sid, "1");
  });

  it("cuts off a polling client that does not poll once its buffer is over the bound (I7)", async () => {
    const conv = await new Conversation(edge.store, ident.tid, ident.sub).create();
    await conv.deltas(60);
    const sid = await handshake();
    await post(sid, `40${JSON.stringify({ token })}`);
    await (await poll(sid)).text();
    // Subscribe from 0 and never poll again: ~60 frames of ~200 bytes exceed the 8 kB bound.
    await post(sid, `421["subscribe",{"conversationId":"${conv.id}","from":"0"}]`);
    await waitFor(async () => expect(await gone(sid)).toBe(true));
    await healthy();
  });

  it("survives fuzzed polling payloads (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.tuple(fc.constantFrom("4", "40", "42", "421", "43", "44", "2", "3", "6", "b"), fc.json()).map(([p, j]) => p + j),
          fc.array(fc.json(), { maxLength: 5 }).map((a) => a.map((j) => `42${j}`).join("\x1e")),
        ),
        async (payload) => {
          const sid = await handshake();
          await post(sid, `40${JSON.stringify({ token })}`);
          await (await poll(sid)).text();
          const res = await post(sid, payload);
          expect([200, 400, 413]).toContain(res.status);
          await res.text();
          await post(sid, "1").then((r) => r.text());
        },
      ),
      { numRuns: 60 },
    );
    await healthy();
  });
});

describe("Engine.IO over raw WebSocket", () => {
  it("sends the open packet first and closes the session on malformed packets only", async () => {
    const { ws, messages, closed } = await openWs();
    const open = JSON.parse((messages[0] as string).slice(1)) as { sid: string; upgrades: string[] };
    expect(open.upgrades).toEqual([]);
    ws.send(`40${JSON.stringify({ token })}`);
    await waitFor(() => expect(messages[1]).toMatch(/^40\{"sid"/));
    ws.send('42["subscribe", {"conversationId": ');
    expect(await closed).toBeGreaterThan(0);
    await healthy();
  });

  it("cuts off a WebSocket client that stops reading once uWS holds more than the bound (I7); others unaffected", async () => {
    const conv = await new Conversation(edge.store, ident.tid, ident.sub).create();
    const healthyClient = new Client(edge.url, { auth: { token }, transports: ["websocket"] });
    await healthyClient.connected();
    expect(await healthyClient.emit("subscribe", { conversationId: conv.id })).toMatchObject({ ok: true });
    const { ws, messages, closed } = await openWs();
    ws.send(`40${JSON.stringify({ token })}`);
    await waitFor(() => expect(messages.length).toBeGreaterThan(1));
    ws.send(`421["subscribe",{"conversationId":"${conv.id}"}]`);
    await waitFor(() => expect(messages.some((m) => m.startsWith("431["))).toBe(true));
    const before = edge.sio.connections();
    // Stop reading: the kernel buffers fill, then uWS's per-socket buffer passes maxWsBackpressure.
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    let appended = 0;
    while (edge.sio.connections() === before && appended < 2000) {
      await conv.deltas(20, 16_000);
      appended += 20;
    }
    expect(edge.sio.connections()).toBe(before - 1);
    await waitFor(() => expect(healthyClient.offsetsOf(conv.id)).toEqual(conv.offsets.slice(1)));
    healthyClient.close();
    ws.terminate();
    await closed;
  });

  it("closes a WebSocket that sends more than maxPayload", async () => {
    const { ws, closed } = await openWs();
    ws.send(`4${"y".repeat(MAX_PAYLOAD + 10)}`);
    expect(await closed).toBeGreaterThan(0);
  });

  it("survives fuzzed frames (fast-check), one connection per run", async () => {
    const frame = fc.oneof(
      fc.string({ maxLength: 100 }),
      fc.uint8Array({ maxLength: 64 }),
      fc.tuple(fc.constantFrom("4", "40", "41", "42", "421", "43", "44", "45", "46", "1", "2", "3", "5", "6"), fc.json()).map(([p, j]) => p + j),
      fc
        .tuple(fc.constantFrom("subscribe", "unsubscribe", "chat_message", "cancel", "x"), fc.anything())
        .map(([n, a]) => `421${JSON.stringify([n, a]) ?? "[]"}`),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 8 }), async (frames) => {
        const { ws, messages, closed } = await openWs();
        ws.send(`40${JSON.stringify({ token })}`);
        await waitFor(() => expect(messages.length).toBeGreaterThan(1));
        let isClosed = false;
        void closed.then(() => (isClosed = true));
        for (const f of frames) if (!isClosed) ws.send(f);
        // A sentinel with an ack: answered if the connection survived, otherwise it closed.
        if (!isClosed) ws.send('4299["unsubscribe",{"conversationId":"sentinel"}]');
        await waitFor(() => expect(isClosed || messages.some((m) => m.startsWith("4399["))).toBe(true));
        ws.terminate();
      }),
      { numRuns: 60 },
    );
    await healthy();
  });
});

describe("flood control", () => {
  it("applies the gateway's per-user message rate to chat_message (anonymous: 10/min)", async () => {
    const limited = await startEdge({}, undefined, (r) => {
      const limiter = createRateLimiter(r.client);
      return { rateLimit: (p) => limiter.consume(p, "msg") };
    });
    try {
      const who = randomIdentity();
      const anon = await mintToken({ ...who, tier: "anonymous" });
      const conv = await new Conversation(limited.store, who.tid, who.sub).create();
      const c = new Client(limited.url, { auth: { token: anon }, transports: ["websocket"] });
      await c.connected();
      const answers: Array<{ ok: boolean; error?: { code: string } }> = [];
      for (let i = 0; i < 11; i++) answers.push(await c.emit("chat_message", { conversationId: conv.id, text: "hi", clientMessageId: `m${i}` }));
      expect(answers.slice(0, 10).every((a) => a.ok)).toBe(true);
      expect(answers[10]).toEqual({ ok: false, error: { code: "RATE_LIMITED", message: expect.any(String) } });
      c.close();
    } finally {
      await limited.close();
    }
  });

  it("answers RATE_LIMITED over the per-connection budget and keeps serving", async () => {
    const c = new Client(edge.url, { auth: { token }, transports: ["websocket"] });
    await c.connected();
    const answers = await Promise.all(Array.from({ length: 200 }, () => c.emit<{ ok: boolean; error?: { code: string } }>("unsubscribe", { conversationId: "c-x" })));
    const limited = answers.filter((a) => a.error?.code === "RATE_LIMITED").length;
    expect(limited).toBeGreaterThan(0);
    expect(answers.filter((a) => a.ok).length).toBeGreaterThan(0);
    await waitFor(async () => expect(await c.emit("unsubscribe", { conversationId: "c-x" })).toEqual({ ok: true }));
    expect(c.socket.connected).toBe(true);
    c.close();
  });
});
