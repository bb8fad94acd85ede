import { io, type Socket } from "socket.io-client";
import type { Envelope } from "../../core/envelope.js";

/**
 * The client side of a chaos run: for each conversation one HTTP sender and followers (SSE and
 * Socket.IO) that resume from their last offset on whichever edge is up whenever their connection
 * drops. Everything a client was told is recorded, so the end of the run can compare it with the log.
 */
export const TERMINAL = new Set(["assistant.completed", "assistant.cancelled", "assistant.failed"]);

export interface Accepted {
  conversationId: string;
  clientMessageId: string;
  messageId: string;
  replyId: string;
  /** 201, or 200 for a repeat (a retry whose first attempt was decided); for failure messages. */
  status?: number;
  attempts?: number;
  /** When the answer arrived (epoch ms). */
  acceptedAt?: number;
}

export interface Stats {
  posts: number;
  accepted: number;
  retries: number;
  unavailable: number;
  pending: number;
  networkErrors: number;
  /** Answers the run did not expect (4xx other than 409/429): a defect. */
  unexpected: string[];
  resumes: number;
}

export const newStats = (): Stats => ({ posts: 0, accepted: 0, retries: 0, unavailable: 0, pending: 0, networkErrors: 0, unexpected: [], resumes: 0 });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The edges a client may use right now. */
export type EdgePicker = () => string;

/** Envelopes a follower received, with every break of "once, in order" noted as it happens. */
export class Follower {
  readonly versions: number[] = [];
  readonly violations: string[] = [];
  /** Reply ids whose terminal event arrived. */
  readonly ended = new Set<string>();
  lastOffset = "0";
  resumes = 0;
  private stopped = false;
  private waiters: Array<() => void> = [];
  constructor(
    readonly kind: "sse" | "sio",
    readonly conversationId: string,
  ) {}

  get lastVersion(): number {
    return this.versions.at(-1) ?? 0;
  }

  receive(e: Envelope): void {
    const expected = this.lastVersion + 1;
    if (e.version !== expected) this.violations.push(`${this.kind} ${this.conversationId}: got v${e.version} after v${this.lastVersion}`);
    if (e.version > this.lastVersion) this.lastOffset = e.offset;
    this.versions.push(e.version);
    if (TERMINAL.has(e.type)) this.ended.add((e.data as { messageId: string }).messageId);
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when an event arrives (or after `ms`). */
  changed(ms: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(r, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        r();
      });
    });
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.waiters.splice(0)) w();
  }

  get isStopped(): boolean {
    return this.stopped;
  }
}

/** SSE over fetch: resume with Last-Event-ID on any edge after a drop. */
export async function followSse(f: Follower, pick: EdgePicker, token: string): Promise<void> {
  let first = true;
  while (!f.isStopped) {
    const ac = new AbortController();
    const stopCheck = setInterval(() => f.isStopped && ac.abort(), 200);
    try {
      const url = `${pick()}/v1/conversations/${f.conversationId}/events${first ? "?from=0" : ""}`;
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (!first) headers["last-event-id"] = f.lastOffset;
      const res = await fetch(url, { headers, signal: ac.signal });
      if (res.status !== 200 || !res.body) {
        await res.body?.cancel();
        throw new Error(`status ${res.status}`);
      }
      first = false;
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = frame
            .split("\n")
            .filter((l) => l.startsWith("data: "))
            .map((l) => l.slice(6))
            .join("\n");
          if (data) f.receive(JSON.parse(data) as Envelope);
        }
      }
    } catch {
      // dropped: resume below
    } finally {
      clearInterval(stopCheck);
    }
    if (f.isStopped) return;
    // A first connection that failed before any event is still a fresh start from 0.
    if (!first) f.resumes++;
    await sleep(100 + Math.random() * 200);
  }
}

/** socket.io-client: on a drop, a new socket on any edge subscribes from the last offset. */
export async function followSio(f: Follower, pick: EdgePicker, token: string): Promise<void> {
  let subscribedOnce = false;
  while (!f.isStopped) {
    const socket: Socket = io(pick(), { auth: { token }, transports: ["websocket"], reconnection: false, timeout: 5000 });
    socket.on("chat_event", (e: Envelope) => {
      if (e.conversationId === f.conversationId) f.receive(e);
    });
    await new Promise<void>((resolve) => {
      const done = () => resolve();
      socket.on("connect_error", done);
      socket.on("disconnect", done);
      const stopCheck = setInterval(() => f.isStopped && done(), 200);
      socket.on("connect", () => {
        socket.emit("subscribe", { conversationId: f.conversationId, from: f.lastOffset }, (ack: { ok: boolean }) => {
          if (!ack?.ok) done();
          else subscribedOnce = true;
        });
      });
      socket.once("disconnect", () => clearInterval(stopCheck));
      socket.once("connect_error", () => clearInterval(stopCheck));
    });
    socket.removeAllListeners();
    socket.disconnect();
    if (f.isStopped) return;
    if (subscribedOnce) f.resumes++;
    await sleep(100 + Math.random() * 200);
  }
}

/**
 * One conversation's sender: message k has clientMessageId `m<k>`; it is POSTed (to any edge) until
 * an answer says accepted (201, or 200 for a repeat) — retries reuse the id, so a lost answer never
 * makes a second message. The next message goes once the reply ended as seen by `watch`.
 */
export async function send(opts: {
  conversationId: string;
  token: string;
  pick: EdgePicker;
  watch: Follower;
  until: () => boolean;
  thinkMs: number;
  accepted: Accepted[];
  stats: Stats;
}): Promise<void> {
  const { conversationId, token, pick, watch, stats } = opts;
  for (let k = 0; !opts.until(); k++) {
    const clientMessageId = `m${k}`;
    let acceptedHere: Accepted | undefined;
    const giveUpAt = Date.now() + 90_000;
    for (let attempt = 0; !acceptedHere; attempt++) {
      if (attempt > 0) stats.retries++;
      if (Date.now() > giveUpAt) {
        stats.unexpected.push(`${conversationId} ${clientMessageId}: never accepted`);
        return;
      }
      stats.posts++;
      try {
        const res = await fetch(`${pick()}/v1/conversations/${conversationId}/messages`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ text: `question ${k} of ${conversationId}`, clientMessageId }),
          signal: AbortSignal.timeout(20_000),
        });
        const body = (await res.json()) as { messageId?: string; replyId?: string; error?: { code: string } };
        if (res.status === 201 || res.status === 200) {
          acceptedHere = { conversationId, clientMessageId, messageId: body.messageId as string, replyId: body.replyId as string, status: res.status, attempts: attempt + 1, acceptedAt: Date.now() };
        } else if (res.status === 202) {
          stats.pending++;
          await sleep(500);
        } else if (res.status === 409 || res.status === 429) {
          await sleep(300);
        } else if (res.status >= 500) {
          stats.unavailable++;
          await sleep(200);
        } else {
          stats.unexpected.push(`${conversationId} ${clientMessageId}: ${res.status} ${JSON.stringify(body)}`);
          return;
        }
      } catch {
        stats.networkErrors++;
        await sleep(200);
      }
    }
    opts.accepted.push(acceptedHere);
    stats.accepted++;
    // Wait (bounded) for the reply's end on our follower; if it lags, the next POST's 409 waits too.
    const until = Date.now() + 30_000;
    while (Date.now() < until && !watch.isStopped && !watch.ended.has(acceptedHere.replyId)) await watch.changed(500);
    await sleep(opts.thinkMs);
  }
}

