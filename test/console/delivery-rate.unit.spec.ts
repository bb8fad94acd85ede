import { describe, expect, it } from "vitest";
import { RateWindow } from "../../edge/console/delivery-rate.js";

describe("RateWindow (deliveries/s between console polls)", () => {
  it("is 0 before a second sample, then the rate over the window", () => {
    const w = new RateWindow(10_000);
    expect(w.observe(100, 0)).toBe(0);
    expect(w.observe(150, 1000)).toBe(50);
    expect(w.observe(250, 2000)).toBe(75);
  });

  it("keeps one sample older than the window as its base", () => {
    const w = new RateWindow(2_000);
    w.observe(0, 0);
    w.observe(10, 1000);
    w.observe(20, 2000);
    w.observe(30, 3000);
    // Window 2 s: the base is the newest sample at least 2 s old (2000 ms, total 20).
    expect(w.observe(60, 4000)).toBe(20);
  });

  it("reports 0 after a counter reset instead of a negative rate", () => {
    const w = new RateWindow();
    w.observe(500, 0);
    expect(w.observe(3, 1000)).toBe(0);
  });
});
