/**
 * A client worker process: opens its share of the bench's client connections, counts every event
 * that arrives, and reports sparse latency histograms to the orchestrator twice a second. Client
 * load is spread over several of these so that client CPU never hides inside the server's figures
 * (the orchestrator measures the server process alone through /proc).
 *
 * Started with child_process.fork by clients/pool.ts; never imported by anything else.
 *
 * `socket.io-client` and `ws` are loaded only by the client kinds that need them: they are
 * development dependencies, and an SSE-only bench must run on a production install.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import type { Socket } from "socket.io-client";
import type WebSocket from "ws";
import { Histogram } from "../lib/histogram.js";
import { firstDeltaMessageId, offsetMillis, offsetOf, splitSse } from "./frames.js";
import { WorkerSpecSchema, type FromWorker, type ToWorker } from "./protocol.js";

type Spec = ReturnType<typeof WorkerSpecSchema.parse>;
type ClientDef = Spec["clients"][number];

const lat = new Histogram();
const first = new Histogram();
let received = 0;
let connected = 0;
const errors: Record<string, number> = {};
const count = (k: string): void => {
  errors[k] = (errors[k] ?? 0) + 1;
};
const now = (): number => performance.timeOrigin + performance.now();
const send = (m: FromWorker): void => {
  process.send?.(m);
};

/** Reply id → send time, and reply id → first-delta arrival, whichever side comes first. */
const sentAt = new Map<string, number>();
const firstSeen = new Map<string, number>();
function matchFirst(replyId: string, t: number, side: "sent" | "seen"): void {
  const other = side === "sent" ? firstSeen : sentAt;
  const o = other.get(replyId);
  if (o === undefined) {
    (side === "sent" ? sentAt : firstSeen).set(replyId, t);
    return;
  }
  other.delete(replyId);
  first.record(side === "sent" ? o - t : t - o);
}

let chatOn = false;
let chatMode = false;

/**
 * `run.ts --trace DIR`: deliveries slower than 8 ms as flat [offset, arrival ms] pairs, written to
 * DIR/tail-<pid>.json at the end for bench/fanout/attribute.ts (bounded).
 */
const TRACE_DIR = process.env.BENCH_TRACE_DIR;
const tail: Array<string | number> = [];
function onEvent(text: string, sender: boolean): void {
  const t = now();
  const ms = offsetMillis(text);
  received++;
  if (Number.isFinite(ms)) lat.record(t - ms);
  if (TRACE_DIR && t - ms >= 8 && tail.length < 400_000) tail.push(offsetOf(text), Math.round(t));
  if (chatMode && sender) {
    const id = firstDeltaMessageId(text);
    if (id !== undefined) matchFirst(id, t, "seen");
  }
}

interface Conn {
  close(): void;
  /** Chat mode: send one message; resolves with the reply id or undefined when refused. */
  chat?(def: ClientDef, n: number): Promise<string | undefined>;
}

const fill = (tpl: string, def: ClientDef): string =>
  tpl.replaceAll("{id}", encodeURIComponent(def.conversationId)).replaceAll("{token}", encodeURIComponent(def.token));

function connectSse(spec: Spec, def: ClientDef): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const url = new URL(fill(spec.pathTemplate, def), spec.baseUrl);
    const req = httpRequest(url, { headers: { accept: "text/event-stream" } }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`sse ${res.statusCode}`));
        return;
      }
      res.setEncoding("utf8");
      let buf = "";
      res.on("data", (chunk: string) => {
        buf += chunk;
        const { data, rest } = splitSse(buf);
        buf = rest;
        for (const d of data) onEvent(d, def.sender);
      });
      res.on("error", () => count("sse-error"));
      res.on("close", () => {
        connected--;
        count("closed");
      });
      connected++;
      resolve({
        close: () => req.destroy(),
        chat: (d, n) => postMessage(spec, d, n),
      });
    });
    req.on("error", (e) => reject(e));
    req.end();
  });
}

async function postMessage(spec: Spec, def: ClientDef, n: number): Promise<string | undefined> {
  const t0 = now();
  const body = JSON.stringify({ text: `bench message ${n}`, clientMessageId: `b${process.pid}-${n}`, ...(spec.chat?.maxTokens ? { maxTokens: spec.chat.maxTokens } : {}) });
  const res = await fetch(new URL(`/v1/conversations/${encodeURIComponent(def.conversationId)}/messages`, spec.baseUrl), {
    method: "POST",
    headers: { authorization: `Bearer ${def.token}`, "content-type": "application/json" },
    body,
  });
  const json = (await res.json().catch(() => ({}))) as { replyId?: string; error?: { code?: string } };
  if (res.status !== 201 || !json.replyId) {
    count(`send-${json.error?.code ?? res.status}`);
    return undefined;
  }
  matchFirst(json.replyId, t0, "sent");
  return json.replyId;
}

const lazy = {
  io: undefined as typeof import("socket.io-client").io | undefined,
  WebSocket: undefined as typeof WebSocket | undefined,
};
async function loadIo(): Promise<typeof import("socket.io-client").io> {
  lazy.io ??= (await import("socket.io-client")).io;
  return lazy.io;
}
async function loadWs(): Promise<typeof WebSocket> {
  lazy.WebSocket ??= (await import("ws")).default;
  return lazy.WebSocket;
}

async function connectSio(spec: Spec, def: ClientDef): Promise<Conn> {
  const io = await loadIo();
  return new Promise((resolve, reject) => {
    const socket: Socket = io(spec.baseUrl, { auth: { token: def.token }, forceNew: true, reconnection: false, timeout: 20_000 });
    socket.on("connect_error", (e) => reject(e));
    socket.on("chat_event", (env: unknown) => onEvent(JSON.stringify(env), def.sender));
    socket.on("disconnect", () => {
      connected--;
      count("closed");
    });
    socket.on("connect", () => {
      socket.emit("subscribe", { conversationId: def.conversationId }, (ack: { ok?: boolean; error?: { code?: string } }) => {
        if (!ack?.ok) {
          reject(new Error(`subscribe refused: ${ack?.error?.code ?? "?"}`));
          socket.close();
          return;
        }
        connected++;
        resolve({
          close: () => socket.close(),
          chat: (d, n) =>
            new Promise((done) => {
              const t0 = now();
              socket.emit(
                "chat_message",
                { conversationId: d.conversationId, text: `bench message ${n}`, clientMessageId: `b${process.pid}-${n}`, ...(spec.chat?.maxTokens ? { maxTokens: spec.chat.maxTokens } : {}) },
                (r: { ok?: boolean; replyId?: string; error?: { code?: string } }) => {
                  if (!r?.ok || !r.replyId) {
                    count(`send-${r?.error?.code ?? "refused"}`);
                    done(undefined);
                    return;
                  }
                  matchFirst(r.replyId, t0, "sent");
                  done(r.replyId);
                },
              );
            }),
        });
      });
    });
  });
}

/**
 * A minimal Socket.IO v5 client over one raw WebSocket: CONNECT with auth, answer pings, subscribe,
 * count events. Far lighter than the stock client (no polling, no reconnection logic, no parser
 * objects), so a few processes can hold thousands of connections while the server is measured.
 */
async function connectSioWs(spec: Spec, def: ClientDef): Promise<Conn> {
  const WS = await loadWs();
  return new Promise((resolve, reject) => {
    const u = new URL("/socket.io/?EIO=4&transport=websocket", spec.baseUrl);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WS(u, { perMessageDeflate: false });
    let ready = false;
    ws.on("error", (e) => {
      if (!ready) reject(e);
      else count("ws-error");
    });
    ws.on("close", () => {
      if (ready) {
        connected--;
        count("closed");
      } else reject(new Error("closed before subscribe"));
    });
    ws.on("message", (raw: WebSocket.RawData) => {
      const text = raw.toString();
      const c = text.charCodeAt(0);
      if (c === 50 /* 2 ping */) {
        ws.send("3");
      } else if (text.startsWith("42")) {
        onEvent(text, def.sender);
      } else if (c === 48 /* 0 open */) {
        ws.send(`40${JSON.stringify({ token: def.token })}`);
      } else if (text.startsWith("40")) {
        ws.send(`421["subscribe",${JSON.stringify({ conversationId: def.conversationId })}]`);
      } else if (text.startsWith("431")) {
        if (!text.includes('"ok":true')) {
          reject(new Error(`subscribe refused: ${text.slice(0, 120)}`));
          ws.close();
          return;
        }
        ready = true;
        connected++;
        resolve({ close: () => ws.close() });
      } else if (text.startsWith("44")) {
        reject(new Error(`connect_error ${text.slice(2, 120)}`));
        ws.close();
      }
    });
  });
}

async function connectWs(spec: Spec, def: ClientDef): Promise<Conn> {
  const WS = await loadWs();
  return new Promise((resolve, reject) => {
    const u = new URL(fill(spec.pathTemplate, def), spec.baseUrl);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WS(u, { perMessageDeflate: false });
    let ready = false;
    ws.on("open", () => {
      ready = true;
      connected++;
      resolve({ close: () => ws.close() });
    });
    ws.on("error", (e) => (ready ? count("ws-error") : reject(e)));
    ws.on("close", () => {
      if (!ready) return;
      connected--;
      count("closed");
    });
    ws.on("message", (raw: WebSocket.RawData) => onEvent(raw.toString(), def.sender));
  });
}

const CONNECT = { sse: connectSse, sio: connectSio, "sio-ws": connectSioWs, ws: connectWs } as const;

async function run(spec: Spec): Promise<void> {
  chatMode = spec.chat !== undefined;
  const conns: Array<{ def: ClientDef; conn: Conn }> = [];
  let failed = 0;
  let lastError: string | undefined;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < spec.clients.length) {
      const def = spec.clients[next++] as ClientDef;
      try {
        conns.push({ def, conn: await CONNECT[spec.kind](spec, def) });
      } catch (e) {
        failed++;
        lastError = e instanceof Error ? e.message : String(e);
        count("connect-failed");
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(spec.connectConcurrency, spec.clients.length) }, lane));
  send({ t: "ready", connected, failed, ...(lastError ? { error: lastError } : {}) });

  const tick = setInterval(() => {
    send({ t: "tick", received, lat: lat.toPairs(), first: first.toPairs(), connected, errors: { ...errors } });
    received = 0;
    lat.clear();
    first.clear();
    for (const k of Object.keys(errors)) delete errors[k];
  }, 500);

  // Chat senders: each sends on its own timer, staggered so the global rate is even.
  const timers: NodeJS.Timeout[] = [];
  if (spec.chat) {
    const interval = spec.chat.intervalMs;
    const senders = conns.filter((c) => c.def.sender);
    senders.forEach((s, i) => {
      let n = 0;
      let busy = false;
      const fire = (): void => {
        if (!chatOn || !s.conn.chat) return;
        if (busy) {
          count("send-skipped-busy");
          return;
        }
        busy = true;
        s.conn
          .chat(s.def, n++)
          .catch(() => count("send-failed"))
          .finally(() => (busy = false));
      };
      const start = setTimeout(() => timers.push(setInterval(fire, interval)), (interval * i) / Math.max(1, senders.length));
      timers.push(start);
    });
  }

  await new Promise<void>((resolve) => {
    process.on("message", (m: ToWorker) => {
      if (m.t === "reset") {
        received = 0;
        lat.clear();
        first.clear();
      } else if (m.t === "chat") chatOn = m.on;
      else if (m.t === "stop") resolve();
    });
    process.on("disconnect", () => resolve());
  });
  clearInterval(tick);
  for (const t of timers) clearInterval(t);
  for (const c of conns) c.conn.close();
  send({ t: "tick", received, lat: lat.toPairs(), first: first.toPairs(), connected, errors: { ...errors } });
  if (TRACE_DIR) (await import("node:fs")).writeFileSync(`${TRACE_DIR}/tail-${process.pid}.json`, JSON.stringify(tail));
  setTimeout(() => process.exit(0), 200).unref();
}

process.once("message", (m: ToWorker) => {
  if (m.t !== "start") return;
  const parsed = WorkerSpecSchema.safeParse(m.spec);
  if (!parsed.success) {
    send({ t: "ready", connected: 0, failed: 0, error: `bad spec: ${parsed.error.issues[0]?.message ?? "?"}` });
    process.exit(2);
  }
  run(parsed.data).catch((e: unknown) => {
    send({ t: "ready", connected: 0, failed: 0, error: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  });
});
// Never outlive the orchestrator: an orphaned load generator is the one thing a bench must not leave.
process.on("disconnect", () => setTimeout(() => process.exit(0), 500).unref());
