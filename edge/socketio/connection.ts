import { randomBytes } from "node:crypto";
import { Decoder, PacketType, type Packet } from "socket.io-parser";
import type { z } from "zod";
import { compareOffsets, type Envelope } from "../../core/envelope.js";
import { errorMessage, isTributaryError, TributaryError, type ErrorCode } from "../../core/errors.js";
import { assertMayCommand } from "../access.js";
import { findToken } from "../auth/sources.js";
import type { Principal } from "../auth/principal.js";
import type { EngineSession, PingHooks, SessionHandlers } from "../engineio/session.js";
import type { Attachment, FanoutSink } from "../fanout/index.js";
import { TokenBucket } from "./bucket.js";
import type { SocketIoDeps, SocketIoOptions } from "./deps.js";
import { ackFrame, connectErrorFrame, connectFrame, disconnectFrame } from "./frames.js";
import { pickLast, recoverPositions, type DirectEntry, type LiveSub, type PingMark, type SessionRecord } from "./journal.js";
import { CancelPayload, ChatMessagePayload, ConnectAuth, SubscribePayload, UnsubscribePayload } from "./schemas.js";

/**
 * One Socket.IO client on namespace "/": CONNECT (auth, recovery), the events of CONTRACT §6 with
 * acknowledgements, delivery through the fan-out, and the session record written when the
 * transport drops. The server-wide parts (fan-out encoder, publish ring, session store) come in
 * through `ConnectionHost`.
 */
export const ENCODER = "sio";

export interface ConnectionHost {
  deps: SocketIoDeps;
  opts: SocketIoOptions;
  /** Build (and keep for recovery) the journal of a closing session. */
  saveSession(rec: SessionRecord): void;
  /** Take `principal`'s session record for recovery (this node's memory, else Redis); single use. */
  takeSession(pid: string, principal: Principal): Promise<SessionRecord | undefined>;
  /** A live connection of this node holding `pid`, if any (its transport may be dead and unnoticed). */
  livePid(pid: string): Connection | undefined;
  registerPid(pid: string, c: Connection | undefined): void;
  journalOf(
    subs: LiveSub[],
    direct: DirectEntry[],
    marker: [number, string] | undefined,
    confirmed: PingMark | undefined,
    trimmed: { upTo: PingMark; bases: Map<number, string> } | undefined,
  ): Pick<SessionRecord, "subs" | "journal" | "confirmed" | "folded" | "foldedCollisions" | "blind">;
  /** The topic frames `sub` received, copied out of the publish log before it leaves the topic. */
  topicFramesOf(sub: LiveSub): DirectEntry[];
  /** A subscription of `c` joined (or left) `conversationId`'s topic: its publish log is kept while any does. */
  topicJoined(conversationId: string, c: Connection, joined: boolean): void;
  /** `c`'s transport closed (called once, before its session record is written). */
  closed(c: Connection): void;
  /** One frame handed over directly (catch-up, polling), for the deliveries metric. */
  countDelivery(transport: "websocket" | "polling"): void;
}

interface Sub extends LiveSub {
  attachment: Attachment | undefined;
  /** Last offset handed over directly (catch-up / listener); where a later topic join starts. */
  handed: string;
  detached: boolean;
}

/**
 * A subscription as the fan-out sees it (FanoutSink). Classes rather than objects of closures: the
 * methods live on the prototype, so an idle subscription costs a few fields, not a closure context
 * per callback. A polling session's subscription is a listener (every frame through `deliver`); a
 * session on its WebSocket also joins the uWS topic (`join`), so live frames go out natively.
 */
class ListenerSink implements FanoutSink {
  readonly encoder = ENCODER;
  constructor(
    protected readonly conn: Connection,
    protected readonly sub: Sub,
  ) {}

  deliver(frame: string, env: Envelope): boolean {
    return this.conn.deliverDirect(this.sub, frame, env);
  }

  onDrop(): void {
    this.conn.dropped();
  }
}

class TopicSink extends ListenerSink {
  join(topic: string): void {
    this.conn.joinTopic(this.sub, topic);
  }
}

/** The empty journal of direct hand-overs, shared until a session's first one (most never have any). */
const NO_DIRECT: DirectEntry[] = [];

const SID_BYTES = 15;
const newId = (): string => randomBytes(SID_BYTES).toString("base64url");

function failure(e: unknown): { ok: false; error: { code: ErrorCode; message: string } } {
  if (isTributaryError(e)) return { ok: false, error: { code: e.code, message: e.message } };
  return { ok: false, error: { code: "INTERNAL", message: "internal error" } };
}

function validate<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    throw new TributaryError("VALIDATION_FAILED", `${where}${issue?.message ?? "invalid payload"}`, { details: r.error.issues });
  }
  return r.data;
}

/**
 * The connection is its Engine.IO session's handlers and ping hooks itself (methods on the
 * prototype): per idle connection the node keeps this object's fields and nothing else of ours —
 * no closures, no timers (deadlines ride on the engine's shared heartbeat tick), no parser between
 * packets.
 */
export class Connection implements SessionHandlers, PingHooks {
  /** Only while a binary packet is being reassembled (its attachments follow as further messages). */
  private decoder: Decoder | undefined;
  /** Set by the decoder's callback: the packet just added was complete. */
  private decodedNow = false;
  private readonly bucket: TokenBucket;
  private principal: Principal | undefined;
  private pid: string | undefined;
  private connecting = false;
  private connected = false;
  /** The client said goodbye (DISCONNECT): nothing to recover. */
  private clientLeft = false;
  private closed = false;
  private readonly subs = new Map<string, Sub>();
  private nextSubId = 0;
  private direct: DirectEntry[] = NO_DIRECT;
  private directN = 0;
  private marker: [number, string] | undefined;
  private confirmedMark: PingMark | undefined;
  /** Direct entries dropped to bound memory (they fold into the bases when the journal is built). */
  private trimmed: { upTo: PingMark; bases: Map<number, string> } | undefined;
  /** No CONNECT by then closes the session (0 once connected). */
  private connectDeadline: number;
  /** The token's expiry, ms since the epoch (0 before CONNECT). */
  private expiresAt = 0;
  private transportLabel: "websocket" | "polling";

  constructor(
    private readonly engine: EngineSession,
    private readonly host: ConnectionHost,
  ) {
    this.bucket = new TokenBucket(host.opts.floodBurst, host.opts.floodPerSecond, Date.now());
    this.transportLabel = engine.transport;
    this.connectDeadline = Date.now() + host.opts.connectTimeoutMs;
    engine.handlers = this;
    engine.pingHooks = this;
  }

  // ——— engine callbacks (SessionHandlers, PingHooks) ———

  mark(): PingMark {
    return { seq: this.host.deps.fanout.seq, n: this.directN };
  }

  answered(m: unknown): void {
    // Pongs and poll acknowledgements may arrive out of order: keep the furthest mark.
    const mark = m as PingMark | undefined;
    if (mark === undefined) return;
    const cur = this.confirmedMark;
    if (!cur || mark.n > cur.n || (mark.n === cur.n && mark.seq > cur.seq)) this.confirmedMark = mark;
  }

  /** Deadlines, checked on the engine's shared tick (within about a second). */
  tick(now: number): void {
    if (this.closed) return;
    if (!this.connected) {
      if (now >= this.connectDeadline) this.engine.close("connect timeout", "no CONNECT");
      return;
    }
    if (this.expiresAt !== 0 && now >= this.expiresAt) {
      // Never keep a connection open on an expired token (issue 7 §5). The session stays
      // recoverable: the client may reconnect with a fresh token and the same pid.
      this.send(disconnectFrame());
      this.engine.close("token expired");
    }
  }

  private get log() {
    return this.host.deps.log;
  }

  message(data: string | Buffer): void {
    if (this.closed) return;
    if (!this.bucket.take(Date.now())) {
      // Over the flood limit: answer what asks for an answer, drop the rest, never queue.
      this.host.deps.metrics?.gatewayRejections.inc({ reason: "socketio-flood" });
      const id = typeof data === "string" ? /^2(\d{1,15})\[/.exec(data)?.[1] : undefined;
      if (id !== undefined && this.connected) this.ack(Number(id), failure(new TributaryError("RATE_LIMITED", "too many packets")));
      return;
    }
    try {
      // socket.io-parser reads "" as a CONNECT (Number("") is 0); no real client sends it.
      if (data.length === 0) throw new Error("empty packet");
      // A decoder per packet: it is kept only while a binary packet waits for its attachments
      // (it then emits later), so an idle connection holds no parser.
      let d = this.decoder;
      if (!d) {
        const fresh = new Decoder();
        fresh.on("decoded", (p: Packet) => {
          this.decodedNow = true;
          this.onPacket(p);
        });
        this.decoder = d = fresh;
      }
      this.decodedNow = false;
      d.add(data);
      if (this.decodedNow && this.decoder === d) {
        d.destroy();
        this.decoder = undefined;
      }
    } catch (e) {
      // A malformed packet closes this client only; the process and other clients go on.
      this.log.debug({ sid: this.engine.id, err: errorMessage(e) }, "socket.io parse error");
      this.engine.close("parse error", "malformed socket.io packet");
    }
  }

  private onPacket(p: Packet): void {
    if (this.closed) return;
    if (p.nsp !== "/") {
      if (p.type === PacketType.CONNECT) this.send(`44${p.nsp},${JSON.stringify({ message: "Invalid namespace" })}`);
      return;
    }
    switch (p.type) {
      case PacketType.CONNECT:
        void this.onConnect(p.data);
        return;
      case PacketType.EVENT:
        if (!this.connected) return;
        // The parser passes an EVENT without payload ("42") with data undefined; a client's bad
        // frame must never become an unhandled rejection.
        if (!Array.isArray(p.data) || p.data.length === 0) return;
        this.onEvent(p.data as unknown[], p.id).catch((e: unknown) => this.log.error({ err: errorMessage(e) }, "socket.io event handler failed"));
        return;
      case PacketType.DISCONNECT:
        this.clientLeft = true;
        this.engine.close("client namespace disconnect");
        return;
      case PacketType.BINARY_EVENT:
        // No event of ours carries binary data.
        if (this.connected && p.id !== undefined) this.ack(p.id, failure(new TributaryError("BAD_REQUEST", "binary payloads are not supported")));
        return;
      default:
        // ACK / BINARY_ACK: the server never asks the client for acknowledgements.
        return;
    }
  }

  /** Send one frame of frames.ts (an Engine.IO message carrying a Socket.IO packet). */
  private send(frame: string): void {
    this.engine.sendPacket(frame);
  }

  private ack(id: number, payload: unknown): void {
    if (this.closed) return;
    this.engine.sendPacket(ackFrame(id, payload));
  }

  // ——— CONNECT ———

  private async onConnect(data: unknown): Promise<void> {
    if (this.connected || this.connecting) return;
    this.connecting = true;
    try {
      const auth = ConnectAuth.safeParse(data ?? {});
      if (!auth.success) throw new TributaryError("BAD_REQUEST", "invalid CONNECT payload");
      const token = findToken({
        authorization: this.engine.handshake.headers.authorization,
        cookie: this.engine.handshake.headers.cookie,
        handshakeAuth: auth.data,
      });
      const principal = await this.host.deps.auth.verify(token);
      if (this.closed) return;
      if (principal.exp * 1000 <= Date.now()) throw new TributaryError("UNAUTHENTICATED", "token expired");
      this.principal = principal;
      const recovered = auth.data.pid ? await this.tryRecover(auth.data.pid, auth.data.offset, principal) : undefined;
      if (this.closed) return;
      this.pid = recovered ? (auth.data.pid as string) : newId();
      this.connected = true;
      this.connectDeadline = 0;
      this.expiresAt = principal.exp * 1000;
      // The credentials were read: the session need not keep the request's headers any longer.
      this.engine.releaseHandshake();
      this.host.registerPid(this.pid, this);
      this.host.deps.metrics?.connections.inc({ transport: this.transportLabel });
      this.send(connectFrame(this.engine.id, this.pid));
      if (recovered) {
        this.hook("resumed");
        for (const s of recovered) this.attach(s, s.base);
      } else {
        this.hook("opened");
      }
    } catch (e) {
      if (this.closed) return;
      const code = isTributaryError(e) ? e.code : "INTERNAL";
      if (!isTributaryError(e)) this.log.error({ err: errorMessage(e) }, "socket.io connect failed");
      this.send(connectErrorFrame(code, { code, message: isTributaryError(e) ? e.message : "internal error" }));
    } finally {
      this.connecting = false;
    }
  }

  /**
   * Resume `pid` for `principal` from the client's last offset. Returns the subscriptions with their
   * positions in `base`, or undefined (not recoverable: the client then starts a new session).
   */
  private async tryRecover(pid: string, lastOffset: string | undefined, principal: Principal): Promise<Sub[] | undefined> {
    // The old transport may be dead without this node having noticed yet (the client noticed
    // first): close it now, which writes its record.
    this.host.livePid(pid)?.engine.close("transport close", "superseded by recovery");
    const rec = await this.host.takeSession(pid, principal);
    if (!rec) return undefined;
    const positions = recoverPositions(rec, lastOffset);
    if (!positions) return undefined;
    this.nextSubId = rec.nextSubId;
    if (lastOffset !== undefined) {
      const at = rec.journal[pickLast(rec, lastOffset)];
      if (at) this.marker = [at[0], at[1]];
    }
    const subs: Sub[] = [];
    for (const s of rec.subs) {
      const base = positions.get(s.id) ?? s.base;
      const sub: Sub = { id: s.id, conversationId: s.conversationId, base, handed: base, attachment: undefined, detached: false, topic: undefined };
      this.subs.set(s.conversationId, sub);
      subs.push(sub);
    }
    return subs;
  }

  private hook(kind: "opened" | "resumed"): void {
    const h = this.host.deps.sessions;
    if (!h || !this.pid || !this.principal) return;
    h[kind]({ sessionId: this.pid, principal: this.principal, transport: this.transportLabel }).catch((e: unknown) =>
      this.log.warn({ sessionId: this.pid, err: errorMessage(e) }, `session ${kind} hook failed`),
    );
  }

  // ——— events ———

  private async onEvent(args: unknown[], id: number | undefined): Promise<void> {
    const [name, payload] = args;
    let result: unknown;
    try {
      switch (name) {
        case "subscribe":
          result = await this.subscribe(payload);
          break;
        case "unsubscribe":
          result = this.unsubscribe(payload);
          break;
        case "chat_message":
          result = await this.chatMessage(payload);
          break;
        case "cancel":
          result = await this.cancel(payload);
          break;
        default:
          if (id === undefined) return;
          throw new TributaryError("BAD_REQUEST", `unknown event ${typeof name === "string" ? name.slice(0, 64) : "(none)"}`);
      }
    } catch (e) {
      if (!isTributaryError(e)) this.log.error({ err: errorMessage(e), event: name }, "socket.io event failed");
      result = failure(e);
    }
    if (id !== undefined) this.ack(id, result);
  }

  private async subscribe(payload: unknown): Promise<{ ok: true; offset: string }> {
    const input = validate(SubscribePayload, payload);
    const principal = this.principal as Principal;
    await this.host.deps.access.check(input.conversationId, principal);
    if (this.closed) throw new TributaryError("UNAVAILABLE", "connection closed");
    // A second subscribe to the same conversation restarts it from the new `from`.
    const old = this.subs.get(input.conversationId);
    if (old) this.release(old);
    const sub: Sub = {
      id: this.nextSubId++,
      conversationId: input.conversationId,
      base: input.from ?? "",
      handed: input.from ?? "",
      attachment: undefined,
      detached: false,
      // Present from the start (set on the topic join) so the object keeps one shape.
      topic: undefined,
    };
    this.subs.set(input.conversationId, sub);
    const attachment = await this.attach(sub, input.from ?? null);
    if (!attachment) throw new TributaryError("UNAVAILABLE", "subscription failed");
    return { ok: true, offset: attachment.offset };
  }

  /** Attach `sub` to the fan-out from `from` (null = live from now). */
  private async attach(sub: Sub, from: string | null): Promise<Attachment | undefined> {
    const fanout = this.host.deps.fanout;
    const engine = this.engine;
    // Only a session already on its WebSocket joins the native topic; a polling session (even one
    // about to upgrade) stays a listener, whose frames pass through `deliver` on any transport.
    const viaTopic = engine.transport === "websocket" && !engine.upgrading;
    try {
      const a = await fanout.attach(sub.conversationId, from, viaTopic ? new TopicSink(this, sub) : new ListenerSink(this, sub));
      if (from === null) {
        // Live from now: the position is the offset the fan-out reports (no frame has been handed
        // over yet, nothing is published between the join and this continuation).
        sub.base = a.offset;
        sub.handed = a.offset;
        if (sub.topic && sub.topic.after === "") sub.topic.after = a.offset;
      }
      if (sub.detached || this.closed) {
        a.detach();
        return undefined;
      }
      sub.attachment = a;
      return a;
    } catch (e) {
      this.log.warn({ conversationId: sub.conversationId, err: errorMessage(e) }, "socket.io subscribe failed");
      if (this.subs.get(sub.conversationId) === sub) this.subs.delete(sub.conversationId);
      sub.detached = true;
      if (from !== null && this.connected) {
        // A restored subscription that cannot be followed: let the client resume from its offset.
        this.engine.close("transport error", "resubscribe failed");
      }
      return undefined;
    }
  }

  // ——— fan-out sink callbacks (ListenerSink / TopicSink) ———

  /** A catch-up frame, or a live one while polling. False = over the bound: the fan-out drops the sink. */
  deliverDirect(sub: Sub, frame: string, env: Envelope): boolean {
    if (sub.detached || this.closed) return true;
    const engine = this.engine;
    if (!engine.sendPacket(frame)) return false;
    this.noteDirect({ seq: this.host.deps.fanout.seq, n: this.directN++, subId: sub.id, offset: env.offset });
    sub.handed = env.offset;
    this.host.countDelivery(engine.transport);
    return true;
  }

  /** Caught up on the WebSocket: live frames now come through the conversation's uWS topic. */
  joinTopic(sub: Sub, topic: string): void {
    if (sub.detached || this.closed) return;
    sub.topic = { joinSeq: this.host.deps.fanout.seq, after: sub.handed };
    this.engine.join(topic);
    this.host.topicJoined(sub.conversationId, this, true);
  }

  /** The fan-out cut this client off (over its bound, or its catch-up failed): it resumes by offset. */
  dropped(): void {
    this.host.deps.metrics?.drops.inc({ transport: this.engine.transport, reason: "slow-client" });
    this.engine.close("transport error", "slow client");
  }

  /**
   * Record a direct hand-over. Its offset names one event of the deployment (the append script's
   * ids are unique across conversations), so no acknowledgement is needed to place it on recovery.
   */
  private noteDirect(d: DirectEntry): void {
    if (this.direct === NO_DIRECT) this.direct = [];
    this.direct.push(d);
    if (this.direct.length > 2 * this.host.opts.journalMax) {
      this.direct.sort((a, b) => a.seq - b.seq || (a.live ? 0 : 1) - (b.live ? 0 : 1) || a.n - b.n);
      const gone = this.direct.splice(0, this.direct.length - this.host.opts.journalMax);
      const t = this.trimmed ?? { upTo: { seq: 0, n: 0 }, bases: new Map<number, string>() };
      for (const g of gone) {
        const b = t.bases.get(g.subId);
        if (b === undefined || compareOffsets(g.offset, b) > 0) t.bases.set(g.subId, g.offset);
        if (g.seq > t.upTo.seq || (g.seq === t.upTo.seq && g.n > t.upTo.n)) t.upTo = { seq: g.seq, n: g.live ? t.upTo.n : g.n };
      }
      this.trimmed = t;
    }
  }

  /**
   * After the upgrade, move subscriptions that were made while polling (listeners, one JS send per
   * frame) onto the uWS topic (native publish): detach and attach again from the last offset handed
   * over. The fan-out's catch-up covers whatever is published in between, so nothing is lost or
   * repeated; the cost is one XRANGE per subscription, once per connection.
   */
  upgraded(): void {
    if (this.connected && !this.closed && this.transportLabel !== "websocket") {
      this.host.deps.metrics?.connections.dec({ transport: this.transportLabel });
      this.host.deps.metrics?.connections.inc({ transport: "websocket" });
    }
    this.transportLabel = "websocket";
    for (const sub of [...this.subs.values()]) {
      if (sub.topic || sub.detached || !sub.attachment || sub.handed === "") continue;
      const old = sub.attachment;
      sub.attachment = undefined;
      old.detach();
      void this.attach(sub, sub.handed);
    }
  }

  private release(sub: Sub): void {
    if (sub.topic) {
      // Its frames stay in the session's hand-over order: the client's last frame may be one.
      for (const d of this.host.topicFramesOf(sub)) {
        if (this.direct === NO_DIRECT) this.direct = [];
        this.direct.push(d);
      }
      this.host.topicJoined(sub.conversationId, this, false);
    }
    sub.detached = true;
    sub.attachment?.detach();
    this.engine.leave(this.host.deps.fanout.topic(sub.conversationId, ENCODER));
    this.subs.delete(sub.conversationId);
  }

  private unsubscribe(payload: unknown): { ok: true } {
    const input = validate(UnsubscribePayload, payload);
    const sub = this.subs.get(input.conversationId);
    if (sub) this.release(sub);
    return { ok: true };
  }

  private async chatMessage(payload: unknown): Promise<Record<string, unknown>> {
    const input = validate(ChatMessagePayload, payload);
    const principal = this.principal as Principal;
    const owner = await this.host.deps.access.check(input.conversationId, principal);
    // As HTTP: seeing a conversation (auditor, admin) is not owning it; only the owner posts.
    assertMayCommand(owner, principal, { allowAdmin: false });
    const { admitMessage, rateLimit } = this.host.deps;
    if (admitMessage) await admitMessage(principal, input.conversationId);
    else if (rateLimit) await rateLimit(principal, "chat_message");
    const started = process.hrtime.bigint();
    let outcome = "error";
    try {
      const r = await this.host.deps.commands.postMessage({
        conversationId: input.conversationId,
        tenantId: principal.tenantId,
        userId: principal.userId,
        tier: principal.tier,
        text: input.text,
        clientMessageId: input.clientMessageId,
        maxTokens: input.maxTokens,
      });
      outcome = r.kind;
      return { ok: true, ...r.body };
    } finally {
      this.host.deps.metrics?.commandLatency.observe(
        { command: "socketio.chat_message", outcome },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    }
  }

  private async cancel(payload: unknown): Promise<{ ok: true; cancelled: boolean }> {
    const input = validate(CancelPayload, payload);
    const principal = this.principal as Principal;
    const owner = await this.host.deps.access.check(input.conversationId, principal);
    assertMayCommand(owner, principal, { allowAdmin: true });
    const r = await this.host.deps.commands.cancel({
      conversationId: input.conversationId,
      tenantId: principal.tenantId,
      userId: principal.userId,
      roles: principal.roles,
    });
    return { ok: true, cancelled: r.cancelled };
  }

  // ——— close ———

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.host.closed(this);
    this.decoder?.destroy();
    this.decoder = undefined;
    const subs = [...this.subs.values()];
    const recoverable = this.connected && !this.clientLeft && this.pid !== undefined && this.principal !== undefined;
    // The journal first: it reads the publish log of the conversations this session still holds.
    const j = recoverable
      ? this.host.journalOf(
          // A subscription still waiting for its first answer from the fan-out has no position yet;
          // its ack never reached the client either, so it is simply not restored.
          subs.filter((s) => s.base !== ""),
          this.direct,
          this.marker,
          this.confirmedMark,
          this.trimmed,
        )
      : undefined;
    for (const s of subs) {
      s.detached = true;
      s.attachment?.detach();
      if (s.topic) this.host.topicJoined(s.conversationId, this, false);
    }
    if (!this.connected || !this.pid || !this.principal) return;
    this.host.deps.metrics?.connections.dec({ transport: this.transportLabel });
    if (this.host.livePid(this.pid) === this) this.host.registerPid(this.pid, undefined);
    if (j) {
      this.host.saveSession({
        v: 1,
        pid: this.pid,
        tenantId: this.principal.tenantId,
        userId: this.principal.userId,
        nextSubId: this.nextSubId,
        subs: j.subs,
        journal: j.journal,
        confirmed: j.confirmed,
        folded: j.folded,
        foldedCollisions: j.foldedCollisions,
        blind: j.blind,
      });
    }
    const h = this.host.deps.sessions;
    if (h) {
      h.closed({ sessionId: this.pid, principal: this.principal, reason, recoverable }).catch((e: unknown) =>
        this.log.warn({ sessionId: this.pid, err: errorMessage(e) }, "session closed hook failed"),
      );
    }
  }
}
