import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEdgeMetrics, perTurnCounter } from "../../edge/metrics.js";

/** perTurnCounter adds its count to the real counter once per event-loop turn, losing nothing. */
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function value(m: ReturnType<typeof createEdgeMetrics>, transport: string): Promise<number> {
  const got = await m.deliveries.get();
  return got.values.find((v) => v.labels.transport === transport)?.value ?? 0;
}

describe("perTurnCounter", () => {
  it("every inc reaches the counter by the next turn, under its own labels only", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(300), { minLength: 1, maxLength: 5 }), async (bursts) => {
        const m = createEdgeMetrics({ defaultMetrics: false });
        const sse = perTurnCounter(m.deliveries, { transport: "sse" });
        let total = 0;
        for (const n of bursts) {
          for (let i = 0; i < n; i++) sse.inc();
          total += n;
          await nextTurn();
          expect(await value(m, "sse")).toBe(total);
          expect(await value(m, "websocket")).toBe(0);
        }
      }),
      { numRuns: 30 },
    );
  });
});
