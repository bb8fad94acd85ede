/**
 * Reads an async source ahead of its consumer: everything the source produces while the consumer is
 * busy (say, appending the previous pieces of a reply) is handed over in one `take()`. That is how
 * pieces of a reply that arrive while an append is in flight go out together in the next append
 * instead of one append each.
 *
 * The read-ahead is unbounded, so use it only for sources that are bounded (a reply has at most
 * `maxTokens` pieces) and stop them through their own AbortSignal.
 */
export interface Taken<T> {
  /** Everything produced since the previous take, in order (empty only when the source has ended). */
  items: T[];
  /** The source is finished (returned or threw) and `items` holds the last of it. */
  ended: boolean;
  /** Present when the source threw: what it threw, after the items it produced first. */
  error?: { cause: unknown };
}

export class Pump<T> {
  private queue: T[] = [];
  private ended = false;
  private error: { cause: unknown } | undefined;
  private wake: (() => void) | undefined;
  /** Settles when the source is finished; never rejects. */
  readonly finished: Promise<void>;

  constructor(source: AsyncIterable<T>) {
    this.finished = this.run(source);
  }

  private async run(source: AsyncIterable<T>): Promise<void> {
    try {
      for await (const item of source) {
        this.queue.push(item);
        this.wake?.();
      }
    } catch (e) {
      this.error = { cause: e };
    } finally {
      this.ended = true;
      this.wake?.();
    }
  }

  /**
   * Waits until the source produced something or ended, then takes all of it. After waiting, it
   * lets the event loop turn once before taking: a source that produces several items at once (a
   * responder's last piece and its "done", or a burst of network chunks) has then produced all of
   * them, and they are taken together — without it the first item would be taken alone.
   */
  async take(): Promise<Taken<T>> {
    if (this.queue.length === 0 && !this.ended) {
      while (this.queue.length === 0 && !this.ended) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const items = this.queue;
    this.queue = [];
    return { items, ended: this.ended, ...(this.error ? { error: this.error } : {}) };
  }
}
