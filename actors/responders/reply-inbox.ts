import type { ReplySink, ResponderChunk } from "./types.js";

/**
 * Collects a reply's chunks ahead of its consumer: everything pushed while the consumer is busy (say,
 * appending the previous pieces) is handed over in one `take()`. That is how pieces that arrive
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

export class ReplyInbox implements ReplySink {
  private queue: ResponderChunk[] = [];
  private ended = false;
  private error: { cause: unknown } | undefined;
  private wake: (() => void) | undefined;

  push(chunk: ResponderChunk): void {
    if (this.ended) return;
    this.queue.push(chunk);
    this.wake?.();
  }

  end(failure?: { cause: unknown }): void {
    if (this.ended) return;
    this.ended = true;
    this.error = failure;
    this.wake?.();
  }

  /**
   * Waits until something was pushed or the reply ended, then takes all of it. After waiting, it
   * lets the event loop turn once before taking: a responder that produces several chunks at once
   * (its last piece and its "done", or a burst of network chunks) has then produced all of them,
   * and they are taken together — without it the first chunk would be taken alone.
   */
  async take(): Promise<Taken> {
    if (this.queue.length === 0 && !this.ended) {
      while (this.queue.length === 0 && !this.ended) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const items = this.queue;
    this.queue = [];
    return this.error ? { items, ended: this.ended, error: this.error } : { items, ended: this.ended };
  }
}
