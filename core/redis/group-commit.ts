/**
 * Group commit: combine requests for the same group key (here: one partition = one Redis Cluster
 * slot) into one call, without adding latency.
 *
 * - A request for a group with no call in flight is flushed at the end of the current tick
 *   (process.nextTick — no timer): requests issued in the same tick share the call, a lone request
 *   goes out at once.
 * - While a group's call is in flight, its new requests queue; when the call returns they go out
 *   together (again at the end of that tick, so callers resolved by the reply that append again
 *   right away join the same call).
 * - A call carries at most `maxItems` requests and, unless a single request is larger, at most
 *   `maxWeight` (bytes); once the queue holds a full call it is sent even while another is in
 *   flight (waiting could not make it bigger).
 *
 * The scheduler knows nothing of Redis: `flush` does the I/O and returns one outcome per request,
 * a value or an Error, so one request's failure never decides another's. A rejected `flush` (the
 * connection failed, the script could not run) fails every request of that call.
 */
export interface GroupCommitOptions<K, T, R> {
  flush: (group: K, items: T[]) => Promise<Array<R | Error>>;
  /** Requests per call [64]. */
  maxItems?: number;
  /** Weight (bytes) per call [512 KiB]; a request heavier than this goes alone. */
  maxWeight?: number;
  weight?: (item: T) => number;
}

interface Pending<T, R> {
  item: T;
  weight: number;
  resolve: (r: R) => void;
  reject: (e: Error) => void;
}

interface GroupState<T, R> {
  queue: Array<Pending<T, R>>;
  queuedWeight: number;
  inFlight: number;
  scheduled: boolean;
}

export interface GroupCommitStats {
  /** Calls made and requests carried, since creation: requests / calls = mean group size. */
  calls: number;
  items: number;
  /** The most requests one call carried. */
  largest: number;
}

export class GroupCommit<K, T, R> {
  private readonly groups = new Map<K, GroupState<T, R>>();
  private readonly maxItems: number;
  private readonly maxWeight: number;
  readonly stats: GroupCommitStats = { calls: 0, items: 0, largest: 0 };

  constructor(private readonly o: GroupCommitOptions<K, T, R>) {
    this.maxItems = Math.max(1, Math.floor(o.maxItems ?? 64));
    this.maxWeight = Math.max(1, o.maxWeight ?? 512 * 1024);
  }

  submit(group: K, item: T): Promise<R> {
    let g = this.groups.get(group);
    if (!g) {
      g = { queue: [], queuedWeight: 0, inFlight: 0, scheduled: false };
      this.groups.set(group, g);
    }
    const state = g;
    return new Promise<R>((resolve, reject) => {
      const weight = this.o.weight ? this.o.weight(item) : 1;
      state.queue.push({ item, weight, resolve, reject });
      state.queuedWeight += weight;
      if (state.queue.length >= this.maxItems || state.queuedWeight >= this.maxWeight) this.send(group, state);
      else if (state.inFlight === 0) this.schedule(group, state);
    });
  }

  private schedule(group: K, g: GroupState<T, R>): void {
    if (g.scheduled) return;
    g.scheduled = true;
    process.nextTick(() => {
      g.scheduled = false;
      if (g.queue.length > 0 && g.inFlight === 0) this.send(group, g);
    });
  }

  /** Take one call's worth from the queue (in order) and send it. */
  private send(group: K, g: GroupState<T, R>): void {
    let n = 0;
    let w = 0;
    while (n < g.queue.length && n < this.maxItems) {
      const next = (g.queue[n] as Pending<T, R>).weight;
      if (n > 0 && w + next > this.maxWeight) break;
      w += next;
      n += 1;
    }
    const batch = g.queue.splice(0, n);
    g.queuedWeight -= w;
    g.inFlight += 1;
    this.stats.calls += 1;
    this.stats.items += batch.length;
    if (batch.length > this.stats.largest) this.stats.largest = batch.length;
    const settle = (outcomes: Array<R | Error> | Error): void => {
      g.inFlight -= 1;
      batch.forEach((p, i) => {
        const o = outcomes instanceof Error ? outcomes : outcomes[i];
        if (o instanceof Error) p.reject(o);
        else if (o === undefined) p.reject(new Error(`group commit: no outcome for request ${i} of ${batch.length}`));
        else p.resolve(o);
      });
      if (g.queue.length > 0) {
        if (g.queue.length >= this.maxItems || g.queuedWeight >= this.maxWeight) this.send(group, g);
        else if (g.inFlight === 0) this.schedule(group, g);
      } else if (g.inFlight === 0 && !g.scheduled) {
        this.groups.delete(group);
      }
    };
    let call: Promise<Array<R | Error>>;
    try {
      call = this.o.flush(group, batch.map((p) => p.item));
    } catch (e) {
      call = Promise.reject(e);
    }
    call.then(settle, (e: unknown) => settle(e instanceof Error ? e : new Error(String(e))));
  }
}
