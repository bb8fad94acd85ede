import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReplyRunner } from "../../actors/runtime/reply-runner.js";
import type { ResponderChunk } from "../../actors/responders/types.js";

const d = (text: string): ResponderChunk => ({ kind: "delta", text });
const turn = () => new Promise((r) => setImmediate(r));
const texts = (cs: ResponderChunk[]) => cs.map((c) => (c.kind === "delta" ? c.text : "done"));

describe("ReplyRunner (a running reply that waits without a suspended function)", () => {
  it("a drain that takes until empty, then idles, sees every chunk once, in order", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.string({ maxLength: 3 }), { minLength: 1, maxLength: 4 }), { maxLength: 8 }), fc.boolean(), async (groups, busy) => {
        const r = new ReplyRunner("c", 0);
        const seen: string[] = [];
        let wakes = 0;
        let ended = false;
        r.arm(() => {
          wakes++;
          void (async () => {
            for (;;) {
              const t = r.takeNow();
              seen.push(...texts(t.items));
              if (t.ended) return void (ended = true);
              if (t.items.length === 0) return r.idle();
              if (busy) await turn(); // an append in flight: pushes meanwhile wake nothing
            }
          })();
        });
        for (const g of groups) {
          for (const t of g) r.push(d(t));
          await turn();
          await turn();
        }
        r.end();
        while (!ended) await turn();
        expect(seen).toEqual(groups.flat());
        expect(wakes).toBeLessThanOrEqual(groups.length + 1);
      }),
      { numRuns: 40 },
    );
  });

  it("wakes once per burst, after a turn of the event loop, and not before it is armed", async () => {
    const r = new ReplyRunner("c", 0);
    let wakes = 0;
    r.push(d("a")); // pushed while the reply is still loading: kept for the first drain
    await turn();
    expect(wakes).toBe(0);
    r.arm(() => wakes++);
    r.push(d("b"));
    expect(wakes).toBe(0); // not synchronously: "b" joins "a"
    await turn();
    expect(wakes).toBe(1);
    r.push(d("c")); // still draining (no idle yet): no second wake
    await turn();
    expect(wakes).toBe(1);
    expect(texts(r.takeNow().items)).toEqual(["a", "b", "c"]);
    r.idle();
    r.push({ kind: "done", finishReason: "stop", usage: { inputTokens: 1, outputTokens: 3 } });
    r.end();
    await turn();
    expect(wakes).toBe(2);
    const last = r.takeNow();
    expect(texts(last.items)).toEqual(["done"]);
    expect(last.ended).toBe(true);
  });

  it("stop stops the responder, ends the inbox and ignores what comes after; whenDone settles on markDone", async () => {
    const r = new ReplyRunner("c", 0);
    let stops = 0;
    r.responder = { stop: () => stops++ };
    r.arm(() => undefined);
    r.stop("cancel");
    r.stop("handover"); // a later reason is kept, the responder is stopped once
    expect(stops).toBe(1);
    expect(r.reason).toBe("handover");
    r.push(d("late"));
    const t = r.takeNow();
    expect(t).toEqual({ items: [], ended: true });
    let settled = false;
    const done = r.whenDone().then(() => (settled = true));
    await turn();
    expect(settled).toBe(false);
    r.markDone();
    await done;
    await r.whenDone(); // after the fact too
  });

  it("a responder failure arrives after the chunks produced before it", () => {
    const r = new ReplyRunner("c", 0);
    const boom = new Error("boom");
    r.push(d("a"));
    r.end({ cause: boom });
    r.end(); // a second end changes nothing
    const t = r.takeNow();
    expect(texts(t.items)).toEqual(["a"]);
    expect(t.error?.cause).toBe(boom);
  });
});
