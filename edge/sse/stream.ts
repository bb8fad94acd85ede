import type { HttpResponse } from "../uws.js";
import { DRAIN_PROBE, OPEN_FRAME, PING_FRAME } from "./frame.js";

/**
 * One Server-Sent Events response with a bounded send buffer (I7).
 *
 * uWS's `write` always accepts the bytes: when the socket is full it keeps the rest in its own
 * buffer and returns false. The chunked SSE body gives no way to read that buffer's size
 * (`getWriteOffset` stays 0 for `write`), so the stream never writes into uWS while it is
 * backpressured: frames wait in our own queue, counted in bytes, and `onWritable` moves them on
 * once a write goes through whole. uWS therefore holds at most one write's worth (≤ the bound), our
 * queue at most `maxBufferedBytes`, so a connection never holds more than about twice the bound; a
 * client that lets the queue pass the bound is cut off and resumes with Last-Event-ID. Nothing here
 * ever waits for a client.
 *
 * Frames handed over in one synchronous run (every event of one XREAD reply, a catch-up page) reach
 * uWS as ONE corked write per response, made in a microtask right after that run — before any I/O
 * callback, so no later than the per-frame writes were and with nothing reordered. One write (and
 * one send syscall) per client per batch instead of per event is what lets SSE fan-out keep up
 * with the bare per-event loop at high rates (issue 5: `send` was half the edge's busy time). A
 * batch that grows past the bound is written at once, so uWS still holds at most about one bound.
 */
export interface SseStreamOptions {
  maxBufferedBytes: number;
  /** Extra response headers (request id …). */
  headers?: Record<string, string>;
  /** `retry:` field sent first: the client's reconnection delay in ms. */
  retryMs?: number | undefined;
  /** How long catch-up waits for a backpressured client before giving up on it [30000 ms]. */
  stallMs?: number | undefined;
}

/**
 * The frame `send` is writing and its stream, for `writeOutgoing`: one module-level function
 * instead of a closure per stream or per frame (uWS runs the cork callback synchronously).
 */
let outgoingStream: SseStream | undefined;
let outgoingFrame = "";
function writeOutgoing(): void {
  const s = outgoingStream as SseStream;
  s.wroteOutgoing(s.res.write(outgoingFrame));
}

/** Streams with a batch waiting for the end of the current synchronous run (see the header). */
let dirty: SseStream[] = [];
let flushQueued = false;
function flushDirty(): void {
  flushQueued = false;
  const streams = dirty;
  dirty = [];
  for (let i = 0; i < streams.length; i++) (streams[i] as SseStream).flushBatch();
}

export class SseStream {
  readonly res: HttpResponse;
  private readonly maxBufferedBytes: number;
  private readonly stallMs: number;
  /** Only needed until `open` writes the headers. */
  private openOptions: Pick<SseStreamOptions, "headers" | "retryMs"> | undefined;
  /** Frames waiting (before open, or while backpressured); allocated on first need. */
  private queue: string[] | undefined;
  private queuedBytes = 0;
  /** Frames of the current synchronous run, written together by flushDirty (undefined = none). */
  private batch: string | undefined;
  private batchBytes = 0;
  private opened = false;
  private backpressured = false;
  private closedFlag = false;
  private drainWaiters: Array<(ok: boolean) => void> | undefined;
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(res: HttpResponse, o: SseStreamOptions) {
    this.res = res;
    this.maxBufferedBytes = o.maxBufferedBytes;
    this.stallMs = o.stallMs ?? 30_000;
    this.openOptions = { headers: o.headers, retryMs: o.retryMs };
  }

  /** writeOutgoing's result: false = uWS kept part of the frame (the socket is full). */
  wroteOutgoing(ok: boolean): void {
    this.backpressured = !ok;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Bytes waiting in our queue (not counting the last partial write uWS holds). */
  get buffered(): number {
    return this.queuedBytes;
  }

  /**
   * Send the status line and headers now (CONTRACT §5: headers at once). Frames handed to `send`
   * before this wait in the queue and follow the headers.
   */
  open(): void {
    if (this.closedFlag || this.opened) return;
    this.opened = true;
    const o = this.openOptions ?? {};
    this.openOptions = undefined;
    this.watchWritable();
    const first = (o.retryMs !== undefined ? `retry: ${o.retryMs}\n` : "") + OPEN_FRAME;
    const pending = this.takeQueue();
    this.res.cork(() => {
      this.res.writeStatus("200 OK");
      this.res.writeHeader("content-type", "text/event-stream");
      this.res.writeHeader("cache-control", "no-cache");
      // Reverse proxies (nginx) must not buffer an event stream.
      this.res.writeHeader("x-accel-buffering", "no");
      for (const [k, v] of Object.entries(o.headers ?? {})) this.res.writeHeader(k, v);
      this.backpressured = !this.res.write(first + pending);
    });
  }

  /** Apart from open(), so the handler uWS keeps for the stream's life closes over `this` only. */
  private watchWritable(): void {
    this.res.onWritable(() => this.onWritable());
  }

  /**
   * Queue or batch one frame; false when the client is over its bound (the caller then closes).
   * The frame goes out with the rest of the current synchronous run's frames (see the header).
   */
  send(frame: string): boolean {
    if (this.closedFlag) return false;
    if (!this.opened || this.backpressured) {
      (this.queue ??= []).push(frame);
      this.queuedBytes += Buffer.byteLength(frame);
      return this.queuedBytes <= this.maxBufferedBytes;
    }
    if (this.batch === undefined) {
      this.batch = frame;
      this.batchBytes = Buffer.byteLength(frame);
      dirty.push(this);
      if (!flushQueued) {
        flushQueued = true;
        queueMicrotask(flushDirty);
      }
    } else {
      // A rope: V8 flattens it once, when uWS reads it.
      this.batch += frame;
      this.batchBytes += Buffer.byteLength(frame);
    }
    // A run larger than the bound (a long catch-up page) goes out now: uWS must not be handed more
    // than about one bound, and the write's result tells whether the following frames must queue.
    if (this.batchBytes > this.maxBufferedBytes) this.flushBatch();
    return true;
  }

  /** Write the current batch (flushDirty, or an oversized run). A no-op once closed or flushed. */
  flushBatch(): void {
    const frames = this.batch;
    if (frames === undefined) return;
    this.batch = undefined;
    this.batchBytes = 0;
    if (this.closedFlag) return;
    outgoingStream = this;
    outgoingFrame = frames;
    try {
      this.res.cork(writeOutgoing);
    } catch {
      // A response uWS already closed (its abort not yet delivered): onAborted cleans up.
      this.backpressured = true;
    } finally {
      outgoingStream = undefined;
      outgoingFrame = "";
    }
  }

  /**
   * Catch-up pacing (FanoutSink.whenWritable): undefined while writes go straight through, else a
   * promise that resolves true once our queue has drained into the socket, false if the client
   * stalls past `stallMs` or the stream closes.
   */
  whenWritable(): Promise<boolean> | undefined {
    if (this.closedFlag) return Promise.resolve(false);
    if (this.opened && !this.backpressured) return undefined;
    if (!this.stallTimer) {
      this.stallTimer = setTimeout(() => this.settleWaiters(false), this.stallMs);
      this.stallTimer.unref();
    }
    return new Promise<boolean>((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  /** Heartbeat; skipped while frames are queued (the connection is not idle then). */
  ping(): void {
    if (this.closedFlag || !this.opened || this.backpressured || this.batch !== undefined) return;
    this.res.cork(() => {
      this.backpressured = !this.res.write(PING_FRAME);
    });
  }

  /** Cut the connection (slow client, expired token, shutdown). uWS then runs onAborted. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.queue = undefined;
    this.queuedBytes = 0;
    this.batch = undefined;
    this.settleWaiters(false);
    this.res.close();
  }

  /** The response was aborted by the peer: never touch `res` again. */
  markAborted(): void {
    this.closedFlag = true;
    this.queue = undefined;
    this.queuedBytes = 0;
    this.batch = undefined;
    this.settleWaiters(false);
  }

  private onWritable(): boolean {
    if (this.closedFlag) return true;
    // First let uWS flush what it holds; only when that went through whole do we add more.
    if (!this.res.write(DRAIN_PROBE)) return false;
    if (this.queue !== undefined && this.queue.length > 0 && !this.res.write(this.takeQueue())) return false;
    this.backpressured = false;
    this.settleWaiters(true);
    return true;
  }

  private settleWaiters(ok: boolean): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    const waiters = this.drainWaiters;
    this.drainWaiters = undefined;
    if (waiters) for (const w of waiters) w(ok);
  }

  private takeQueue(): string {
    const all = this.queue?.join("") ?? "";
    this.queue = undefined;
    this.queuedBytes = 0;
    return all;
  }
}
