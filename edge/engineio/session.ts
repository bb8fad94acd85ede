import type { HttpResponse, WebSocket } from "../uws.js";

/**
 * One Engine.IO v4 session: a logical connection that outlives its transports (HTTP long-polling,
 * then — after the upgrade — a WebSocket). The upper layer (Socket.IO) only sees `send`, `join`,
 * `leave`, `close` and the two callbacks; which transport carries a packet is this class's business.
 *
 * Packets are kept as their Engine.IO string encoding ("4…" for a message), so a frame encoded once
 * for a fan-out event is the same bytes on a WebSocket and inside a polling payload.
 */
export type TransportName = "polling" | "websocket";

/** Data uWS keeps per WebSocket: which session it carries and whether it is still a probe. */
export interface WsData {
  sid: string;
  /** True while this WebSocket is the probe of a polling → WebSocket upgrade. */
  probing: boolean;
  /** Set by the upgrade handler when the socket opens a brand-new session (transports:["websocket"]). */
  fresh: boolean;
  handshake: Handshake;
}

/** What the upper layer may know about the request that opened the session. */
export interface Handshake {
  headers: { authorization?: string; cookie?: string };
  query: string;
  remoteAddress: string;
}

/**
 * The upper layer's side of a session. Typically one object per connection whose prototype carries
 * these methods (no closures per connection: idle connections are what a node holds most of).
 */
export interface SessionHandlers {
  /** A message packet's payload (Engine.IO type 4): text, or bytes for a binary message. */
  message(data: string | Buffer): void;
  close(reason: string): void;
  /** The session now runs on its WebSocket (after the polling → WebSocket upgrade). */
  upgraded?(): void;
  /** The server's shared heartbeat tick (about once a second): the place for the upper layer's deadlines. */
  tick?(now: number): void;
}

/**
 * Engine.IO's ping/pong doubles as an acknowledgement: a pong proves every packet sent before its
 * ping arrived. The upper layer stamps each ping with a mark and learns which mark was answered.
 */
export interface PingHooks {
  mark(): unknown;
  answered(mark: unknown): void;
}

export interface SessionLimits {
  pingInterval: number;
  pingTimeout: number;
  /** Bytes of packets a polling session may hold before it is cut off as a slow client (I7). */
  maxPollingBufferBytes: number;
}

/** The server side the session calls back into (topic membership for polling, removal). */
export interface SessionHost {
  pollingJoin(session: EngineSession, topic: string): void;
  pollingLeave(session: EngineSession, topic: string): void;
  removed(session: EngineSession): void;
}

export const SEPARATOR = "\x1e";
const NO_HANDLERS: SessionHandlers = { message: () => undefined, close: () => undefined };
/** What is left of a handshake once the upper layer has read it (see releaseHandshake). */
const RELEASED: Handshake = Object.freeze({ headers: Object.freeze({}), query: "", remoteAddress: "" });
const NOOP = "6";
/** The empty polling buffer, shared (never pushed to): most sessions are WebSocket and never queue. */
const EMPTY: string[] = [];
const PING = "2";
const CLOSE = "1";

export class EngineSession {
  readonly id: string;
  handshake: Handshake;
  handlers: SessionHandlers = NO_HANDLERS;
  transport: TransportName;
  /** The WebSocket once the session runs on (or is upgrading to) one. */
  ws: WebSocket<WsData> | undefined;
  upgrading = false;
  closed = false;
  /**
   * Topics (uWS topic names) the session belongs to, whatever the transport. Most sessions follow
   * one conversation: one string, and a Set only from the second topic on (a Set costs a few
   * hundred bytes per idle connection).
   */
  private topicOne: string | undefined;
  private topicSet: Set<string> | undefined;

  // Polling state: packets waiting for the next GET and the GET being held, if any.
  private buffer: string[] = EMPTY;
  private bufferBytes = 0;
  private pendingGet: HttpResponse | undefined;
  postInFlight = false;
  /** The upper layer's mark when the last non-empty poll response left (see onPollGet). */
  private lastAnswerMark: unknown;

  // Heartbeat: deadlines checked by the server's one shared tick (no timer per session).
  /** When the next ping is due (ms since the epoch). */
  private nextPingAt: number;
  /** When the oldest unanswered ping must have been answered; 0 = no ping outstanding. */
  private pongDeadline = 0;
  /** Marks of the pings not yet answered, oldest first (the client answers each ping, in order). */
  private pendingPings: unknown[] | undefined;
  pingHooks: PingHooks | undefined;

  constructor(
    id: string,
    transport: TransportName,
    handshake: Handshake,
    private readonly limits: SessionLimits,
    private readonly host: SessionHost,
  ) {
    this.id = id;
    this.transport = transport;
    this.handshake = handshake;
    this.nextPingAt = Date.now() + limits.pingInterval;
  }

  /** The upper layer has read what it needs of the handshake (credentials): do not keep it for the session's life. */
  releaseHandshake(): void {
    this.handshake = RELEASED;
  }

  /** A snapshot of the session's topics. */
  get topics(): string[] {
    if (this.topicSet) return [...this.topicSet];
    return this.topicOne === undefined ? [] : [this.topicOne];
  }

  private hasTopic(topic: string): boolean {
    return this.topicSet ? this.topicSet.has(topic) : this.topicOne === topic;
  }

  /** Send a message (Engine.IO type 4) carrying `data`. */
  send(data: string): void {
    this.sendPacket(`4${data}`);
  }

  /** Send an already encoded Engine.IO packet ("4…", "2", …). False when the session was cut off. */
  sendPacket(packet: string): boolean {
    if (this.closed) return false;
    if (this.transport === "websocket" && this.ws && !this.upgrading) {
      // 2 = dropped over the backpressure limit: the client is too slow, cut it off (I7).
      if (this.ws.send(packet, false, false) === 2) {
        this.close("transport error", "slow client");
        return false;
      }
      return true;
    }
    return this.enqueue(packet);
  }

  /** Polling: queue a packet and answer the held GET if there is one. */
  private enqueue(packet: string): boolean {
    const bytes = Buffer.byteLength(packet);
    if (this.bufferBytes + bytes > this.limits.maxPollingBufferBytes) {
      // The client does not poll fast enough; holding more would let it grow without bound.
      this.close("transport error", "slow client");
      return false;
    }
    if (this.buffer === EMPTY) this.buffer = [];
    this.buffer.push(packet);
    this.bufferBytes += bytes;
    if (this.pendingGet) {
      // Flush on the next tick so a burst of sends leaves in one response.
      queueMicrotask(() => this.flushPoll());
    }
    return true;
  }

  join(topic: string): void {
    if (this.hasTopic(topic)) return;
    if (this.topicSet) this.topicSet.add(topic);
    else if (this.topicOne === undefined) this.topicOne = topic;
    else {
      this.topicSet = new Set([this.topicOne, topic]);
      this.topicOne = undefined;
    }
    if (this.transport === "websocket" && this.ws && !this.upgrading) this.ws.subscribe(topic);
    else this.host.pollingJoin(this, topic);
  }

  leave(topic: string): void {
    if (this.topicSet) {
      if (!this.topicSet.delete(topic)) return;
    } else if (this.topicOne === topic) this.topicOne = undefined;
    else return;
    if (this.transport === "websocket" && this.ws && !this.upgrading) this.ws.unsubscribe(topic);
    else this.host.pollingLeave(this, topic);
  }

  // ——— polling transport ———

  /** A GET arrived. Returns false when another GET is already held (protocol violation). */
  onPollGet(res: HttpResponse): boolean {
    if (this.pendingGet) return false;
    // A client polls again only after it has processed the previous response: the new GET
    // acknowledges everything that response carried, like a pong does.
    if (this.lastAnswerMark !== undefined) {
      const m = this.lastAnswerMark;
      this.lastAnswerMark = undefined;
      this.pingHooks?.answered(m);
    }
    if (this.buffer.length > 0 || this.closed) {
      this.answerPoll(res);
      return true;
    }
    if (this.upgrading) {
      // The client is pausing polling to finish the upgrade: release it at once.
      res.cork(() => writePollResponse(res, NOOP));
      return true;
    }
    this.pendingGet = res;
    res.onAborted(() => {
      if (this.pendingGet === res) this.pendingGet = undefined;
      // A poll dropped by the client means its transport is gone (as the reference server does).
      if (!this.closed && this.transport === "polling" && !this.upgrading) this.close("transport close", "poll aborted");
    });
    return true;
  }

  private flushPoll(): void {
    const res = this.pendingGet;
    if (!res || this.buffer.length === 0) return;
    this.pendingGet = undefined;
    res.cork(() => this.answerPoll(res));
  }

  private answerPoll(res: HttpResponse): void {
    if (this.buffer.length > 0) this.lastAnswerMark = this.pingHooks?.mark();
    const payload = this.buffer.length > 0 ? this.buffer.join(SEPARATOR) : NOOP;
    this.buffer = EMPTY;
    this.bufferBytes = 0;
    writePollResponse(res, payload);
    if (this.closed) this.host.removed(this);
  }

  /** Answer the held GET with a NOOP (used when a WebSocket probe arrives). */
  releasePoll(): void {
    const res = this.pendingGet;
    if (!res) return;
    this.pendingGet = undefined;
    if (this.buffer.length > 0) this.lastAnswerMark = this.pingHooks?.mark();
    res.cork(() => writePollResponse(res, this.buffer.length > 0 ? this.drain() : NOOP));
  }

  private drain(): string {
    const p = this.buffer.join(SEPARATOR);
    this.buffer = EMPTY;
    this.bufferBytes = 0;
    return p;
  }

  // ——— upgrade ———

  /** The probe WebSocket said "5": move every topic and waiting packet over to it. */
  completeUpgrade(ws: WebSocket<WsData>): void {
    this.ws = ws;
    this.transport = "websocket";
    this.upgrading = false;
    ws.getUserData().probing = false;
    // Order matters and nothing async runs in between: first what waited for the poll, then the
    // topics, so no fan-out frame can overtake or be lost across the switch.
    const waiting = this.buffer;
    this.buffer = EMPTY;
    this.bufferBytes = 0;
    this.releasePoll();
    ws.cork(() => {
      for (const p of waiting) ws.send(p, false, false);
    });
    for (const t of this.topics) {
      this.host.pollingLeave(this, t);
      ws.subscribe(t);
    }
    this.handlers.upgraded?.();
  }

  // ——— incoming ———

  /** One decoded Engine.IO packet from either transport. */
  onPacket(type: string, data: string | Buffer | undefined): void {
    if (this.closed) return;
    switch (type) {
      case "pong":
        this.onPong();
        return;
      case "message":
        // An empty message is still a message: the layer above decides (Socket.IO rejects it).
        this.handlers.message(data ?? "");
        return;
      case "close":
        this.close("transport close", "client closed");
        return;
      case "ping":
      case "noop":
        return;
      default:
        // "open", "upgrade" on the wrong transport, or a parser error: the client is broken.
        this.close("parse error", `unexpected packet ${type}`);
    }
  }

  // ——— heartbeat ———

  /**
   * The server's shared tick (EngineServer: one interval for all sessions, not a timer each): a
   * ping every pingInterval; the oldest unanswered one must be answered within pingTimeout, else
   * the session closes. Deadlines are met to within one tick.
   */
  tick(now: number): void {
    if (this.closed) return;
    if (this.pongDeadline !== 0 && now >= this.pongDeadline) {
      this.close("ping timeout", "no pong");
      return;
    }
    if (now >= this.nextPingAt) {
      this.nextPingAt = now + this.limits.pingInterval;
      this.ping(now);
      if (this.closed) return;
    }
    this.handlers.tick?.(now);
  }

  /** Send a ping now (stamped with the upper layer's mark). */
  ping(now = Date.now()): void {
    if (this.closed) return;
    (this.pendingPings ??= []).push(this.pingHooks?.mark());
    if (!this.sendPacket(PING)) return;
    if (this.pongDeadline === 0) this.pongDeadline = now + this.limits.pingTimeout;
  }

  private onPong(): void {
    const pending = this.pendingPings;
    if (!pending || pending.length === 0) return;
    const mark = pending.shift();
    this.pongDeadline = pending.length > 0 ? Date.now() + this.limits.pingTimeout : 0;
    if (pending.length === 0) this.pendingPings = undefined;
    this.pingHooks?.answered(mark);
  }

  // ——— close ———

  /**
   * Close the session: tell the client (best effort), end the transport, release topics and tell
   * the upper layer once. `reason` follows the reference server's names ("transport close", …).
   */
  close(reason: string, detail?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.pongDeadline = 0;
    for (const t of this.topics) this.host.pollingLeave(this, t);
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      try {
        if (reason !== "transport close") ws.send(CLOSE, false, false);
        ws.end(1000, detail ?? reason);
      } catch {
        // Already closed by uWS (the close handler is what called us): nothing left to end.
      }
    }
    if (this.transport === "polling" || this.upgrading) {
      if (this.buffer === EMPTY) this.buffer = [];
      this.buffer.push(CLOSE);
      const res = this.pendingGet;
      if (res) {
        this.pendingGet = undefined;
        res.cork(() => writePollResponse(res, this.drain()));
      }
    }
    this.host.removed(this);
    this.handlers.close(reason);
  }
}

/** A polling response: text/plain like the reference server, never cached. */
export function writePollResponse(res: HttpResponse, body: string): void {
  res
    .writeStatus("200 OK")
    .writeHeader("Content-Type", "text/plain; charset=UTF-8")
    .writeHeader("Cache-Control", "no-store")
    .end(body);
}
