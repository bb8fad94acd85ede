/**
 * Coalesces small Redis writes issued in the same tick for the same key into one command.
 *
 * The worker runs every command of a consumer batch concurrently, so their steps line up: the
 * replies of a batch are all ready in the same tick, and so are their running-set marks. ioredis's
 * auto-pipelining already sends such commands in one write, but each still costs a command object,
 * a reply to parse and a promise — most of what a small command costs the client. One SADD with 16
 * members, or one XADD carrying 16 replies, costs about what one of them does.
 *
 * Semantics are those of the single call: `add` resolves once the combined call is acknowledged
 * (so a caller that awaits it still knows its item is durable before it moves on) and rejects with
 * the call's error, for every item it carried. Nothing waits for a timer: the call goes out at the
 * end of the current tick (process.nextTick).
 */
export class TickBatch<K, T> {
  private readonly pending = new Map<K, { items: T[]; done: Promise<void> }>();

  /**
   * @param send one call carrying `items` (in the order they were added) for `key`.
   * @param maxItems a batch this full goes out on its own; the next `add` starts another [512].
   */
  constructor(
    private readonly send: (key: K, items: T[]) => Promise<unknown>,
    private readonly maxItems = 512,
  ) {}

  add(key: K, item: T): Promise<void> {
    const open = this.pending.get(key);
    if (open && open.items.length < this.maxItems) {
      open.items.push(item);
      return open.done;
    }
    const items = [item];
    const done = new Promise<void>((resolve, reject) => {
      process.nextTick(() => {
        if (this.pending.get(key)?.items === items) this.pending.delete(key);
        let call: Promise<unknown>;
        try {
          call = this.send(key, items);
        } catch (e) {
          call = Promise.reject(e);
        }
        call.then(() => resolve(), reject);
      });
    });
    this.pending.set(key, { items, done });
    return done;
  }
}
