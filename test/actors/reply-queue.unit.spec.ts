import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReplyInbox, ReplyQueue } from "../../actors/responders/reply-inbox.js";
import { ReplyRunner } from "../../actors/runtime/reply-runner.js";
import type { ResponderChunk } from "../../actors/responders/types.js";

/**
 * ReplyInbox (awaited, the pull adapter) and ReplyRunner (armed with a callback, the runtime) are
 * the one ReplyQueue: the same queue, end and wake-after-one-turn rule, so the two ways of
 * consuming a reply batch its chunks identically.
 */
const d = (text: string): ResponderChunk => ({ kind: "delta", text });
const turn = () => new Promise((r) => setImmediate(r));
const texts = (cs: ResponderChunk[]) => cs.map((c) => (c.kind === "delta" ? c.text : "done"));

/**
 * Pushes each group at once, then waits (turn by turn, never by the clock) until the consumer has
 * taken all of it before the next group: so each group is exactly one take, whatever the load on the
 * machine. A timer between groups made the batching depend on scheduling (two groups merged when the
 * timer fired before the consumer's turn).
 */
async function feed(sink: ReplyQueue, groups: string[][], taken: { n: number }): Promise<void> {
  let pushed = 0;
  for (const g of groups) {
    for (const t of g) sink.push(d(t));
    pushed += g.length;
    while (taken.n < pushed) await turn();
  }
  sink.end();
}

describe("ReplyQueue (one inbox for the awaited and the armed consumer)", () => {
  it("both consumers are the same queue", () => {
    expect(new ReplyInbox()).toBeInstanceOf(ReplyQueue);
    expect(new ReplyRunner("c", 0)).toBeInstanceOf(ReplyQueue);
  });

  it("awaiting take() and an armed drain see the same takes for the same pushes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.string({ maxLength: 3 }), { minLength: 1, maxLength: 4 }), { maxLength: 6 }), fc.boolean(), async (groups, busy) => {
        const awaited: string[][] = [];
        const inboxTaken = { n: 0 };
        const inbox = new ReplyInbox();
        const fedInbox = feed(inbox, groups, inboxTaken);
        for (;;) {
          const t = await inbox.take();
          inboxTaken.n += t.items.length;
          if (t.items.length > 0) awaited.push(texts(t.items));
          if (t.ended) break;
          if (busy) await turn(); // an append in flight
        }
        await fedInbox;

        const armed: string[][] = [];
        const runnerTaken = { n: 0 };
        const runner = new ReplyRunner("c", 0);
        let done!: () => void;
        const finished = new Promise<void>((r) => (done = r));
        runner.arm(() => {
          void (async () => {
            for (;;) {
              const t = runner.takeNow();
              runnerTaken.n += t.items.length;
              if (t.items.length > 0) armed.push(texts(t.items));
              if (t.ended) return done();
              if (t.items.length === 0) return runner.idle();
              if (busy) await turn();
            }
          })();
        });
        await feed(runner, groups, runnerTaken);
        await finished;

        // A group pushed at once is one take, for either consumer, busy or not.
        expect(awaited).toEqual(groups);
        expect(armed).toEqual(groups);
      }),
      { numRuns: 40 },
    );
  });

  it("disarmed, pushes only queue; takeNow still hands them over", async () => {
    const q = new ReplyQueue();
    let wakes = 0;
    q.arm(() => wakes++);
    q.disarm();
    q.push(d("a"));
    q.end();
    await turn();
    expect(wakes).toBe(0);
    expect(q.takeNow()).toEqual({ items: [d("a")], ended: true });
  });
});
