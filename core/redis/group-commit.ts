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
 * - `maxInFlight` (default 1) lets a group have more calls in flight than one, so that the caller's
 *   process turns one call's reply into results and the next call while the server runs another
 *   (the two overlap on two cores instead of taking turns). A queue flushed with several free slots
 *   is split into equal calls of at least `minSplit` requests, so that the writers settle into
 *   cohorts that alternate; with one free slot the whole queue goes, as with one in flight.
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
  /** Calls per group in flight at once [1]; full calls may exceed it (see above). */
  maxInFlight?: number;
  /** With free slots for several calls, the smallest call a queue is split into [4]. */
  minSplit?: number;
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
  private readonly maxInFlight: number;
  private readonly minSplit: number;
  readonly stats: GroupCommitStats = { calls: 0, items: 0, largest: 0 };

  constructor(private readonly o: GroupCommitOptions<K, T, R>) {
    this.maxItems = Math.max(1, Math.floor(o.maxItems ?? 64));
    this.maxWeight = Math.max(1, o.maxWeight ?? 512 * 1024);
    this.maxInFlight = Math.max(1, Math.floor(o.maxInFlight ?? 1));
    this.minSplit = Math.max(1, Math.floor(o.minSplit ?? 4));
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
      if (this.full(state)) this.send(group, state);
      else if (state.inFlight < this.maxInFlight) this.schedule(group, state);
    });
  }

  /**
   * A queue that holds a full call for every free slot (at least one) goes at once: waiting could
   * not make its calls bigger. Below that, the end of the tick decides (and may split the queue).
   */
  private full(g: GroupState<T, R>): boolean {
    const slots = Math.max(1, this.maxInFlight - g.inFlight);
    return g.queue.length >= this.maxItems * slots || g.queuedWeight >= this.maxWeight;
  }

  private schedule(group: K, g: GroupState<T, R>): void {
    if (g.scheduled) return;
    g.scheduled = true;
    process.nextTick(() => {
      g.scheduled = false;
      const slots = this.maxInFlight - g.inFlight;
      if (g.queue.length === 0 || slots <= 0) return;
      // Several free slots: equal calls of at least minSplit, so that cohorts of writers alternate.
      const calls = Math.min(slots, Math.floor(g.queue.length / this.minSplit));
      if (calls <= 1) return this.send(group, g);
      const size = Math.ceil(g.queue.length / calls);
      for (let c = 0; c < calls && g.queue.length > 0; c++) this.send(group, g, size);
    });
  }

  /** Take one call's worth (at most `limit` requests) from the queue, in order, and send it. */
  private send(group: K, g: GroupState<T, R>, limit = this.maxItems): void {
    const cap = Math.min(limit, this.maxItems);
    let n = 0;
    let w = 0;
    while (n < g.queue.length && n < cap) {
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
        if (this.full(g)) this.send(group, g);
        else if (g.inFlight < this.maxInFlight) this.schedule(group, g);
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
