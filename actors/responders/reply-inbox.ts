import type { ReplySink, ResponderChunk } from "./types.js";

/**
 * Collects a reply's chunks ahead of its consumer: everything pushed while the consumer is busy (say,
 * appending the previous pieces) is handed over in one take. That is how pieces that arrive
 * while an append is in flight go out together in the next append instead of one append each.
 *
 * Unbounded, like the reply it holds: a reply has at most `maxTokens` pieces.
 */
export interface Taken {
  /** Everything pushed since the previous take, in order (empty only when the reply has ended). */
  items: ResponderChunk[];
  /** The reply is finished (ended or failed) and `items` holds the last of it. */
  ended: boolean;
  /** Present when the responder failed: the cause, after the chunks it produced first. */
  error?: { cause: unknown };
}

/**
 * The inbox itself, consumed without a suspended function: the consumer `arm`s it with a callback,
 * and a push (or the end) while no drain runs calls it — after one turn of the event loop, so that
 * what a responder produces at once (its last piece and its `done`, a burst of network chunks) is
 * taken together rather than its first chunk alone. The woken consumer drains with `takeNow()`
 * until it is empty and calls `idle()`; the next push wakes it again. Before `arm`, pushes only
 * queue. actors/runtime/reply-runner.ts drains it this way; `ReplyInbox.take()` waits on it.
 */
export class ReplyQueue implements ReplySink {
  private queue: ResponderChunk[] = [];
  private ended = false;
  private error: { cause: unknown } | undefined;
  private onReady: (() => void) | undefined;
  /** A drain is scheduled or running (or none was armed yet): pushes only queue. */
  private draining = true;

  push(chunk: ResponderChunk): void {
    if (this.ended) return;
    this.queue.push(chunk);
    this.wake();
  }

  end(failure?: { cause: unknown }): void {
    if (this.ended) return;
    this.ended = true;
    this.error = failure;
    this.wake();
  }

  /** From now on, work arriving while no drain runs calls `onReady` (and now, if some is waiting). */
  arm(onReady: () => void): void {
    this.onReady = onReady;
    this.idle();
  }

  /** Nothing is called any more. */
  disarm(): void {
    this.onReady = undefined;
  }

  /** The drain took everything there was; the next push (or the end) wakes it again. */
  idle(): void {
    this.draining = false;
    if (this.queue.length > 0 || this.ended) this.wake();
  }

  /** Everything pushed since the last take, at once (synchronous). */
  takeNow(): Taken {
    const items = this.queue;
    this.queue = [];
    return this.error ? { items, ended: this.ended, error: this.error } : { items, ended: this.ended };
  }

  /** Something to take: a chunk, or the end. */
  protected get ready(): boolean {
    return this.queue.length > 0 || this.ended;
  }

  private wake(): void {
    if (this.draining || this.onReady === undefined) return;
    this.draining = true;
    setImmediate(this.onReady);
  }
}

/** The inbox consumed by awaiting: `take()` (the pull form of a push responder, adapters.ts). */
export class ReplyInbox extends ReplyQueue {
  /**
   * Waits until something was pushed or the reply ended — and then one turn of the event loop, as
   * every wake-up does (ReplyQueue) — and takes all of it; what is already there is taken at once.
   */
  async take(): Promise<Taken> {
    if (!this.ready) await new Promise<void>((resolve) => this.arm(resolve));
    return this.takeNow();
  }
}
