import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OPEN_FRAME } from "../../edge/sse/frame.js";
import { SseStream } from "../../edge/sse/stream.js";
import type { HttpResponse } from "../../edge/uws.js";

/**
 * SseStream against a recording stand-in for uWS's HttpResponse (no socket: this is about what the
 * stream hands to uWS, and when). `accept` decides whether each write went through whole.
 */
class FakeResponse {
  writes: string[] = [];
  accept: (n: number) => boolean = () => true;
  writable: (() => boolean) | undefined;
  closed = false;
  cork(cb: () => void): this {
    cb();
    return this;
  }
  write(s: string): boolean {
    this.writes.push(s);
    return this.accept(this.writes.length);
  }
  writeStatus(): this {
    return this;
  }
  writeHeader(): this {
    return this;
  }
  onWritable(h: () => boolean): this {
    this.writable = h;
    return this;
  }
  close(): this {
    this.closed = true;
    return this;
  }
  /** Everything the client would read, in order, without the stream's own comments. */
  body(): string {
    return this.writes
      .join("")
      .replace(OPEN_FRAME, "")
      .replace(/^:\n/gm, "");
  }
}

const microtask = (): Promise<void> => new Promise((r) => queueMicrotask(r));

function openStream(maxBufferedBytes = 1 << 20): { res: FakeResponse; stream: SseStream } {
  const res = new FakeResponse();
  const stream = new SseStream(res as unknown as HttpResponse, { maxBufferedBytes });
  stream.open();
  res.writes = [];
  return { res, stream };
}

describe("SSE stream batching (issue 5: one write per client per batch)", () => {
  it("frames handed over in one synchronous run reach uWS as one write, right after the run", async () => {
    const { res, stream } = openStream();
    expect(stream.send("a\n\n")).toBe(true);
    expect(stream.send("b\n\n")).toBe(true);
    expect(stream.send("c\n\n")).toBe(true);
    expect(res.writes).toEqual([]);
    await microtask();
    expect(res.writes).toEqual(["a\n\nb\n\nc\n\n"]);
    // The next run is a new batch.
    stream.send("d\n\n");
    await microtask();
    expect(res.writes).toEqual(["a\n\nb\n\nc\n\n", "d\n\n"]);
  });

  it("batches every stream of the run, each in its own order", async () => {
    const a = openStream();
    const b = openStream();
    for (let i = 0; i < 5; i++) {
      a.stream.send(`a${i}\n\n`);
      b.stream.send(`b${i}\n\n`);
    }
    await microtask();
    expect(a.res.writes).toEqual(["a0\n\na1\n\na2\n\na3\n\na4\n\n"]);
    expect(b.res.writes).toEqual(["b0\n\nb1\n\nb2\n\nb3\n\nb4\n\n"]);
  });

  it("a run larger than the bound is written at once, and frames after a refused write queue against the bound (I7)", async () => {
    const { res, stream } = openStream(10);
    res.accept = () => false;
    expect(stream.send("12345678\n\n")).toBe(true); // 10 bytes: within the bound, batched
    expect(res.writes).toEqual([]);
    expect(stream.send("x\n\n")).toBe(true); // 13 > 10: written now, and uWS keeps part of it
    expect(res.writes).toEqual(["12345678\n\nx\n\n"]);
    expect(stream.send("yyyy\n\n")).toBe(true); // queued: 6 bytes
    expect(stream.buffered).toBe(6);
    expect(stream.send("zzzz\n\n")).toBe(false); // 12 > 10: over the bound, the caller cuts the client
    await microtask();
    expect(res.writes).toHaveLength(1);
  });

  it("a stream closed or aborted before the run ends writes nothing of the batch", async () => {
    const a = openStream();
    const b = openStream();
    a.stream.send("a\n\n");
    b.stream.send("b\n\n");
    a.stream.close();
    b.stream.markAborted();
    await microtask();
    expect(a.res.writes).toEqual([]);
    expect(b.res.writes).toEqual([]);
  });

  it("whatever the write results, the client reads every accepted frame once, in order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
        async (runs, results) => {
          const { res, stream } = openStream(1 << 20);
          res.accept = (n) => results[n % results.length] as boolean;
          const sent: string[] = [];
          let k = 0;
          for (const run of runs) {
            for (const len of run) {
              const frame = `${k++}:${"x".repeat(len)}\n\n`;
              expect(stream.send(frame)).toBe(true);
              sent.push(frame);
            }
            await microtask();
            // uWS reports writable again: the stream moves its queue on.
            res.accept = () => true;
            res.writable?.();
            res.accept = (n) => results[n % results.length] as boolean;
          }
          res.accept = () => true;
          res.writable?.();
          expect(res.body()).toBe(sent.join(""));
        },
      ),
    );
  });
});
