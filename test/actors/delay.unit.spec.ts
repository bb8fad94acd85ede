import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { abortableDelay } from "../../actors/responders/delay.js";

describe("abortableDelay", () => {
  it("resolves after the delay and leaves no listener on the signal", async () => {
    const ac = new AbortController();
    const t0 = performance.now();
    await abortableDelay(20, ac.signal);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(15);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("rejects with the signal’s reason when aborted while waiting", async () => {
    const ac = new AbortController();
    const wait = abortableDelay(60_000, ac.signal);
    const reason = new Error("cancelled");
    ac.abort(reason);
    await expect(wait).rejects.toBe(reason);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("rejects at once on a signal that is already aborted", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(abortableDelay(60_000, ac.signal)).rejects.toMatchObject({ name: "AbortError" });
  });
});
