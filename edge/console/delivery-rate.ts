/**
 * Deliveries per second from a monotonically growing counter, measured between the console's polls.
 * Samples are kept for a short window and the rate is taken over the whole window, so two consoles
 * polling the same edge (each shortening the other's interval) still read a steady number.
 */
export interface RateSample {
  atMs: number;
  total: number;
}

export class RateWindow {
  private readonly samples: RateSample[] = [];

  constructor(private readonly windowMs = 10_000) {}

  /** Record the counter's value now and answer the rate over the retained window (0 before two samples). */
  observe(total: number, atMs: number): number {
    this.samples.push({ atMs, total });
    // Keep one sample older than the window as the base, so the rate covers the full window.
    while (this.samples.length > 2 && atMs - this.samples[1]!.atMs >= this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const dt = (atMs - first.atMs) / 1000;
    // A counter reset (a new registry) shows as a drop: report 0 rather than a negative rate.
    if (dt <= 0 || total < first.total) return 0;
    return (total - first.total) / dt;
  }
}
