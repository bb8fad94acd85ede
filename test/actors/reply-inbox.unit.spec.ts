import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReplyInbox } from "../../actors/responders/reply-inbox.js";
import type { ResponderChunk } from "../../actors/responders/types.js";

const d = (text: string): ResponderChunk => ({ kind: "delta", text });
const texts = (cs: ResponderChunk[]) => cs.map((c) => (c.kind === "delta" ? c.text : "done"));
const tick = () => new Promise((r) => setTimeout(r, 1));

/** Pushes `groups` into `inbox`: the chunks of one group at once, a timer tick between groups. */
async function feed(inbox: ReplyInbox, groups: string[][], failAfter?: unknown): Promise<void> {
  for (const g of groups) {
    await tick();
    for (const t of g) inbox.push(t === "done" ? { kind: "done", finishReason: "stop", usage: { inputTokens: 1, outputTokens: 1 } } : d(t));
  }
  inbox.end(failAfter === undefined ? undefined : { cause: failAfter });
}

async function drain(inbox: ReplyInbox): Promise<{ takes: string[][]; error?: unknown }> {
  const takes: string[][] = [];
  for (;;) {
    const t = await inbox.take();
    if (t.items.length > 0) takes.push(texts(t.items));
    if (t.ended) return { takes, ...(t.error ? { error: t.error.cause } : {}) };
  }
}

describe("ReplyInbox (a reply's chunks, collected ahead of the appends)", () => {
  it("hands over every chunk once, in order, and never an empty take before the end", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.string({ maxLength: 3 }), { minLength: 1, maxLength: 5 }), { maxLength: 8 }), async (groups) => {
        const inbox = new ReplyInbox();
        const fed = feed(inbox, groups);
        const takes: string[][] = [];
        for (;;) {
          const t = await inbox.take();
          if (!t.ended) expect(t.items.length).toBeGreaterThan(0);
          takes.push(texts(t.items));
          if (t.ended) break;
        }
        await fed;
        expect(takes.flat()).toEqual(groups.flat());
      }),
      { numRuns: 40 },
    );
  });

  it("takes what is pushed at once together (a reply's last piece and its end)", async () => {
    const one = new ReplyInbox();
    void feed(one, [["a", "done"]]);
    expect((await drain(one)).takes).toEqual([["a", "done"]]);
    const more = new ReplyInbox();
    void feed(more, [["a", "b", "c"], ["d", "e", "done"]]);
    expect((await drain(more)).takes).toEqual([["a", "b", "c"], ["d", "e", "done"]]);
  });

  it("collects what arrives while the consumer is busy into its next take", async () => {
    const inbox = new ReplyInbox();
    inbox.push(d("a"));
    expect(texts((await inbox.take()).items)).toEqual(["a"]);
    // The consumer is "appending" a while b, c and d arrive.
    inbox.push(d("b"));
    inbox.push(d("c"));
    await new Promise((r) => setImmediate(r));
    inbox.push(d("d"));
    inbox.end();
    const t = await inbox.take();
    expect(texts(t.items)).toEqual(["b", "c", "d"]);
    expect(t.ended).toBe(true);
  });

  it("delivers the chunks pushed before a failure, then the failure; nothing after the end", async () => {
    const boom = new Error("boom");
    const inbox = new ReplyInbox();
    const fed = feed(inbox, [["a", "b"], ["c"]], boom);
    const { takes, error } = await drain(inbox);
    await fed;
    expect(takes.flat()).toEqual(["a", "b", "c"]);
    expect(error).toBe(boom);
    inbox.push(d("late"));
    inbox.end();
    const after = await inbox.take();
    expect(after.items).toEqual([]);
    expect(after.error?.cause).toBe(boom);
  });
});
