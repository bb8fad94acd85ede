import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { startOf, streamOf } from "../../actors/responders/adapters.js";
import type { ReplyRequest, ReplySink, ResponderChunk, ResponderRequest } from "../../actors/responders/types.js";

const req: ReplyRequest = { model: "m", prompt: "p", maxTokens: 8 };
const d = (text: string): ResponderChunk => ({ kind: "delta", text });
const done: ResponderChunk = { kind: "done", finishReason: "stop", usage: { inputTokens: 1, outputTokens: 2 } };
const tick = () => new Promise((r) => setTimeout(r, 1));

/** A pull responder yielding `groups` (a tick between groups), then maybe throwing. */
function pull(groups: string[][], failAfter?: Error) {
  return async function* (r: ResponderRequest): AsyncGenerator<ResponderChunk> {
    for (const g of groups) {
      await tick();
      r.signal.throwIfAborted();
      for (const t of g) yield d(t);
    }
    if (failAfter) throw failAfter;
    yield done;
  };
}

/** Runs a push responder to its end, recording what the sink heard. */
function record(start: (r: ReplyRequest, s: ReplySink) => unknown): Promise<{ chunks: ResponderChunk[]; failure?: unknown }> {
  return new Promise((resolve) => {
    const chunks: ResponderChunk[] = [];
    start(req, { push: (c) => chunks.push(c), end: (f) => resolve(f ? { chunks, failure: f.cause } : { chunks }) });
  });
}

describe("responder adapters (push ⇄ pull)", () => {
  it("startOf(stream) pushes what the stream yields, in order, then ends; streamOf gives it back", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.string({ maxLength: 3 }), { minLength: 1, maxLength: 4 }), { maxLength: 6 }), fc.boolean(), async (groups, fails) => {
        const boom = new Error("boom");
        const want = groups.flat().map(d);
        const pushed = await record(startOf(pull(groups, fails ? boom : undefined)));
        expect(pushed.chunks).toEqual(fails ? want : [...want, done]);
        expect(pushed.failure).toBe(fails ? boom : undefined);
        // And back: the pull form of that push form yields the same, and throws the same.
        const out: ResponderChunk[] = [];
        const again = (async () => {
          for await (const c of streamOf(startOf(pull(groups, fails ? boom : undefined)))({ ...req, signal: new AbortController().signal })) out.push(c);
        })();
        if (fails) await expect(again).rejects.toBe(boom);
        else await again;
        expect(out).toEqual(pushed.chunks);
      }),
      { numRuns: 30 },
    );
  });

  it("stop() aborts the stream's signal, and nothing reaches the sink after it", async () => {
    let signal: AbortSignal | undefined;
    const pushed: ResponderChunk[] = [];
    let ended = false;
    const handle = startOf(async function* (r) {
      signal = r.signal;
      for (let i = 0; ; i++) {
        await tick();
        yield d(String(i)); // ignores its signal: the adapter must still drop what comes after stop
      }
    })(req, { push: (c) => pushed.push(c), end: () => (ended = true) });
    while (pushed.length < 2) await tick();
    handle.stop();
    const seen = pushed.length;
    await tick();
    await tick();
    expect(signal?.aborted).toBe(true);
    expect(pushed).toHaveLength(seen);
    expect(ended).toBe(false);
  });

  it("streamOf(start): an abort stops the push responder and rejects with the signal's reason", async () => {
    let stopped = false;
    const ac = new AbortController();
    const seen: ResponderChunk[] = [];
    const stream = streamOf((_r, sink) => {
      let i = 0;
      const timer = setInterval(() => sink.push(d(String(i++))), 1);
      return {
        stop: () => {
          stopped = true;
          clearInterval(timer);
        },
      };
    });
    await expect(
      (async () => {
        for await (const c of stream({ ...req, signal: ac.signal })) {
          seen.push(c);
          if (seen.length === 3) ac.abort(new Error("cancelled"));
        }
      })(),
    ).rejects.toThrow("cancelled");
    expect(stopped).toBe(true);
    // An abort between two chunks of one batch: nothing after it is yielded.
    const burst = streamOf((_r, sink) => {
      for (const t of ["a", "b", "c"]) sink.push(d(t));
      return { stop: () => undefined };
    });
    const got: ResponderChunk[] = [];
    const ac2 = new AbortController();
    await expect(
      (async () => {
        for await (const c of burst({ ...req, signal: ac2.signal })) {
          got.push(c);
          ac2.abort(new Error("cancelled"));
        }
      })(),
    ).rejects.toThrow("cancelled");
    expect(got).toEqual([d("a")]);
    // A consumer that leaves early (break) stops it too.
    stopped = false;
    for await (const _ of stream({ ...req, signal: new AbortController().signal })) break;
    expect(stopped).toBe(true);
  });
});
