import { randomBytes } from "node:crypto";
import { decodePacket, decodePayload } from "engine.io-parser";
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_socket_context_t } from "../uws.js";
import { EngineSession, writePollResponse, type Handshake, type SessionHost, type WsData } from "./session.js";

/**
 * An Engine.IO v4 server on uWebSockets.js: handshake, HTTP long-polling, WebSocket, the polling →
 * WebSocket upgrade, heartbeat and close. It knows nothing of Socket.IO; `onConnection` hands each
 * new session to the layer above.
 *
 * Delivery to many sessions goes through topics: a WebSocket session is subscribed to the uWS topic
 * (so `app.publish` fans out in native code), a polling session is listed in `pollingMembers` and
 * gets the same frame appended to its bounded buffer. `publish` does both.
 */
export interface EngineOptions {
  /** URL prefix, with the trailing slash. */
  path: string;
  pingInterval: number;
  pingTimeout: number;
  /** Largest packet/payload accepted from a client, in bytes (announced in the handshake). */
  maxPayload: number;
  /** Per-session bound of queued bytes for polling clients (I7). */
  maxPollingBufferBytes: number;
  /** Per-WebSocket bound of unsent bytes; a publish over it closes the socket (I7). */
  maxWsBackpressure: number;
  onConnection(session: EngineSession): void;
}

export const ENGINE_DEFAULTS = {
  path: "/socket.io/",
  pingInterval: 25_000,
  pingTimeout: 20_000,
  maxPayload: 1_000_000,
  maxPollingBufferBytes: 1 << 20,
  maxWsBackpressure: 1 << 20,
} as const;

/** Engine.IO's error codes in a 400 body (as the reference server sends them). */
const ERR = {
  UNKNOWN_TRANSPORT: { code: 0, message: "Transport unknown" },
  UNKNOWN_SID: { code: 1, message: "Session ID unknown" },
  BAD_HANDSHAKE_METHOD: { code: 2, message: "Bad handshake method" },
  BAD_REQUEST: { code: 3, message: "Bad request" },
  UNSUPPORTED_PROTOCOL_VERSION: { code: 5, message: "Unsupported protocol version" },
} as const;

interface ParsedQuery {
  eio: string | null;
  transport: string | null;
  sid: string | null;
  raw: string;
}

function parseQuery(raw: string): ParsedQuery {
  const q = new URLSearchParams(raw);
  return { eio: q.get("EIO"), transport: q.get("transport"), sid: q.get("sid"), raw };
}

function newSid(): string {
  // base64url of 15 random bytes: 20 characters, unguessable, safe in URLs and Redis keys.
  return randomBytes(15).toString("base64url");
}

function fail(res: HttpResponse, err: { code: number; message: string }, status = "400 Bad Request"): void {
  res.writeStatus(status).writeHeader("Content-Type", "application/json").end(JSON.stringify(err));
}

function handshakeOf(req: HttpRequest, res: HttpResponse, query: string): Handshake {
  const headers: Handshake["headers"] = {};
  const auth = req.getHeader("authorization");
  const cookie = req.getHeader("cookie");
  if (auth) headers.authorization = auth;
  if (cookie) headers.cookie = cookie;
  return { headers, query, remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString() };
}

/** What a WebSocket's user data keeps of its handshake once the session has it. */
const NO_HANDSHAKE: Handshake = Object.freeze({ headers: Object.freeze({}), query: "", remoteAddress: "" });

export class EngineServer implements SessionHost {
  readonly sessions = new Map<string, EngineSession>();
  private readonly pollingMembers = new Map<string, Set<EngineSession>>();
  private readonly opts: EngineOptions;
  private readonly openPacket: (sid: string, upgrades: string[]) => string;
  /**
   * One heartbeat timer for every session of the server (pings, pong deadlines and the upper
   * layer's deadlines), running while there are sessions: thousands of idle connections must not
   * mean thousands of timers. Its period bounds how late a deadline is noticed.
   */
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly tickMs: number;

  constructor(
    private readonly app: TemplatedApp,
    opts: Partial<EngineOptions> & Pick<EngineOptions, "onConnection">,
  ) {
    this.opts = { ...ENGINE_DEFAULTS, ...opts };
    const { pingInterval, pingTimeout, maxPayload } = this.opts;
    this.openPacket = (sid, upgrades) => `0${JSON.stringify({ sid, upgrades, pingInterval, pingTimeout, maxPayload })}`;
    this.tickMs = Math.max(5, Math.min(1000, Math.floor(Math.min(pingInterval, pingTimeout) / 5)));
    this.attach();
  }

  private tick(): void {
    if (this.sessions.size === 0) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
      return;
    }
    const now = Date.now();
    // A session that closes during its tick leaves the map; Map iteration skips deleted entries.
    for (const s of this.sessions.values()) s.tick(now);
  }

  /** Deliver one encoded Engine.IO packet to every session in `topic`, whatever its transport. */
  publish(topic: string, packet: string): void {
    this.app.publish(topic, packet, false, false);
    this.deliverPolling(topic, packet);
  }

  /** The polling half of `publish`, for a fan-out that already did `app.publish` itself. */
  deliverPolling(topic: string, packet: string): void {
    const members = this.pollingMembers.get(topic);
    if (!members) return;
    // Copy: a session over its bound closes and leaves the set while we iterate.
    for (const s of [...members]) s.sendPacket(packet);
  }

  pollingJoin(session: EngineSession, topic: string): void {
    let set = this.pollingMembers.get(topic);
    if (!set) this.pollingMembers.set(topic, (set = new Set()));
    set.add(session);
  }

  pollingLeave(session: EngineSession, topic: string): void {
    const set = this.pollingMembers.get(topic);
    if (!set) return;
    set.delete(session);
    if (set.size === 0) this.pollingMembers.delete(topic);
  }

  removed(session: EngineSession): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
  }

  /** Close every session (shutdown). */
  closeAll(): void {
    for (const s of [...this.sessions.values()]) s.close("server shutting down");
  }

  private createSession(sid: string, transport: "polling" | "websocket", handshake: Handshake): EngineSession {
    const s = new EngineSession(sid, transport, handshake, this.opts, this);
    this.sessions.set(sid, s);
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => this.tick(), this.tickMs);
      this.heartbeat.unref();
    }
    return s;
  }

  private attach(): void {
    const { path } = this.opts;
    const pattern = path.endsWith("/") ? path : `${path}/`;
    this.app.get(pattern, (res, req) => this.onGet(res, req));
    this.app.post(pattern, (res, req) => this.onPost(res, req));
    this.app.options(pattern, (res) => {
      res.writeStatus("204 No Content").end();
    });
    this.app.ws<WsData>(pattern, {
      maxPayloadLength: this.opts.maxPayload,
      maxBackpressure: this.opts.maxWsBackpressure,
      // A frame that cannot be queued closes the socket instead of being skipped: a skipped frame
      // would be a silent gap, a closed socket resumes by offset (I7).
      closeOnBackpressureLimit: 1,
      idleTimeout: 0,
      sendPingsAutomatically: false,
      upgrade: (res, req, context) => this.onWsUpgrade(res, req, context),
      open: (ws) => this.onWsOpen(ws),
      message: (ws, message, isBinary) => this.onWsMessage(ws, message, isBinary),
      close: (ws) => this.onWsClose(ws),
    });
  }

  // ——— HTTP long-polling ———

  private checkQuery(q: ParsedQuery, res: HttpResponse, wanted: "polling" | "websocket"): boolean {
    if (q.eio !== "4") {
      fail(res, ERR.UNSUPPORTED_PROTOCOL_VERSION);
      return false;
    }
    if (q.transport !== wanted) {
      fail(res, ERR.UNKNOWN_TRANSPORT);
      return false;
    }
    return true;
  }

  private onGet(res: HttpResponse, req: HttpRequest): void {
    const q = parseQuery(req.getQuery() ?? "");
    if (!this.checkQuery(q, res, "polling")) return;
    if (q.sid === null) {
      const sid = newSid();
      const session = this.createSession(sid, "polling", handshakeOf(req, res, q.raw));
      writePollResponse(res, this.openPacket(sid, ["websocket"]));
      this.opts.onConnection(session);
      return;
    }
    const session = this.sessions.get(q.sid);
    if (!session || session.transport !== "polling") {
      fail(res, ERR.UNKNOWN_SID);
      return;
    }
    if (!session.onPollGet(res)) {
      // Two GETs at once: the reference server treats it as a broken client and closes the session.
      fail(res, ERR.BAD_REQUEST);
      session.close("transport error", "overlapping poll");
    }
  }

  private onPost(res: HttpResponse, req: HttpRequest): void {
    const q = parseQuery(req.getQuery() ?? "");
    if (!this.checkQuery(q, res, "polling")) return;
    if (q.sid === null) {
      fail(res, ERR.BAD_HANDSHAKE_METHOD);
      return;
    }
    const session = this.sessions.get(q.sid);
    if (!session || session.transport !== "polling") {
      fail(res, ERR.UNKNOWN_SID);
      return;
    }
    if (session.postInFlight) {
      fail(res, ERR.BAD_REQUEST);
      session.close("transport error", "overlapping post");
      return;
    }
    session.postInFlight = true;
    const max = this.opts.maxPayload;
    const declared = Number(req.getHeader("content-length") || "0");
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      session.postInFlight = false;
    });
    if (declared > max) {
      session.postInFlight = false;
      res.writeStatus("413 Payload Too Large").writeHeader("Content-Type", "application/json").end(JSON.stringify(ERR.BAD_REQUEST), true);
      session.close("transport error", "payload too large");
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    res.onData((chunk, isLast) => {
      if (aborted || done) return;
      size += chunk.byteLength;
      if (size > max) {
        // Never buffer past the limit, whatever the declared length said.
        done = true;
        session.postInFlight = false;
        res.cork(() => {
          res.writeStatus("413 Payload Too Large").writeHeader("Content-Type", "application/json").end(JSON.stringify(ERR.BAD_REQUEST), true);
        });
        session.close("transport error", "payload too large");
        return;
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (!isLast) return;
      done = true;
      session.postInFlight = false;
      const body = Buffer.concat(chunks).toString("utf8");
      res.cork(() => {
        res.writeStatus("200 OK").writeHeader("Content-Type", "text/html").end("ok");
      });
      this.onPayload(session, body);
    });
  }

  private onPayload(session: EngineSession, body: string): void {
    if (body.length === 0) {
      session.close("parse error", "empty payload");
      return;
    }
    for (const p of decodePayload(body, "nodebuffer")) {
      if (session.closed) return;
      if (p.type === "error") {
        session.close("parse error", "bad payload");
        return;
      }
      const data: unknown = p.data;
      session.onPacket(p.type, typeof data === "string" || Buffer.isBuffer(data) ? data : undefined);
    }
  }

  // ——— WebSocket ———

  private onWsUpgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const q = parseQuery(req.getQuery() ?? "");
    if (!this.checkQuery(q, res, "websocket")) return;
    const key = req.getHeader("sec-websocket-key");
    const protocol = req.getHeader("sec-websocket-protocol");
    const extensions = req.getHeader("sec-websocket-extensions");
    const handshake = handshakeOf(req, res, q.raw);
    let data: WsData;
    if (q.sid === null) {
      data = { sid: newSid(), probing: false, fresh: true, handshake };
    } else {
      const s = this.sessions.get(q.sid);
      if (!s || s.transport !== "polling" || s.upgrading || s.ws) {
        fail(res, ERR.UNKNOWN_SID);
        return;
      }
      data = { sid: q.sid, probing: true, fresh: false, handshake };
    }
    res.upgrade<WsData>(data, key, protocol, extensions, context);
  }

  private onWsOpen(ws: WebSocket<WsData>): void {
    const d = ws.getUserData();
    const handshake = d.handshake;
    // uWS keeps the user data for the socket's life: the session holds the handshake from here on.
    d.handshake = NO_HANDSHAKE;
    if (d.fresh) {
      const session = this.createSession(d.sid, "websocket", handshake);
      session.ws = ws;
      ws.send(this.openPacket(d.sid, []), false, false);
      this.opts.onConnection(session);
      return;
    }
    const s = this.sessions.get(d.sid);
    if (!s || s.transport !== "polling" || s.upgrading || s.ws) {
      ws.end(1008, "session unknown");
      return;
    }
    // Not yet the session's transport: only the probe ("2probe" / "5") is accepted on it.
    s.ws = ws;
    s.upgrading = false;
  }

  private onWsMessage(ws: WebSocket<WsData>, message: ArrayBuffer, isBinary: boolean): void {
    const d = ws.getUserData();
    const s = this.sessions.get(d.sid);
    if (!s || s.ws !== ws) {
      ws.end(1008, "session unknown");
      return;
    }
    // The buffer is only valid during this callback: decode (which copies) right away.
    const raw: string | Buffer = isBinary ? Buffer.from(new Uint8Array(message)) : Buffer.from(message).toString("utf8");
    const p = decodePacket(raw, "nodebuffer");
    if (d.probing) {
      if (p.type === "ping" && p.data === "probe") {
        s.upgrading = true;
        ws.send("3probe", false, false);
        // Let the client's held GET return so it can pause polling and send "5".
        s.releasePoll();
        return;
      }
      if (p.type === "upgrade" && s.upgrading) {
        s.completeUpgrade(ws);
        return;
      }
      // Anything else on a probe aborts the upgrade; the polling session goes on.
      s.upgrading = false;
      s.ws = undefined;
      ws.end(1002, "bad probe");
      return;
    }
    const data: unknown = p.data;
    s.onPacket(p.type, typeof data === "string" || Buffer.isBuffer(data) ? data : undefined);
  }

  private onWsClose(ws: WebSocket<WsData>): void {
    const d = ws.getUserData();
    const s = this.sessions.get(d.sid);
    if (!s || s.ws !== ws) return;
    if (d.probing) {
      // A failed probe leaves the polling session as it was.
      s.ws = undefined;
      s.upgrading = false;
      return;
    }
    s.ws = undefined;
    s.close("transport close", "websocket closed");
  }
}
