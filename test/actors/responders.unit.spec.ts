import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createSimulatedResponder, readSseData, simulatedPieces, type ResponderChunk } from "../../actors/responders/index.js";
import { estimatePromptTokens } from "../../actors/economics/index.js";

async function collect(it: AsyncIterable<ResponderChunk>): Promise<ResponderChunk[]> {
  const out: ResponderChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

// A rate high enough that no test waits on pacing; pacing itself is not asserted (no timed assertions).
const fast = createSimulatedResponder({ tokensPerSec: 1_000_000, maxTokens: 64 });

describe("simulated responder", () => {
  it("is deterministic: the same prompt gives the same pieces", async () => {
    const req = { model: "sim-1", prompt: "hello", maxTokens: 20, signal: new AbortController().signal };
    const a = await collect(fast.stream(req));
    const b = await collect(fast.stream(req));
    expect(a).toEqual(b);
    expect(a.filter((c) => c.kind === "delta")).toHaveLength(20);
    const other = await collect(fast.stream({ ...req, prompt: "hello!" }));
    expect(other).not.toEqual(a);
  });
  it("honours min(maxTokens, SIM_MAX_TOKENS) and reports usage", async () => {
    const capped = await collect(fast.stream({ model: "sim-1", prompt: "p", maxTokens: 5, signal: new AbortController().signal }));
    expect(capped.at(-1)).toEqual({ kind: "done", finishReason: "length", usage: { inputTokens: estimatePromptTokens("p"), outputTokens: 5 } });
    const natural = await collect(fast.stream({ model: "sim-1", prompt: "p", maxTokens: 1000, signal: new AbortController().signal }));
    expect(natural.filter((c) => c.kind === "delta")).toHaveLength(64);
    expect(natural.at(-1)).toMatchObject({ kind: "done", finishReason: "stop", usage: { outputTokens: 64 } });
  });
  it("a resumed reply continues exactly after the skipped pieces", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 50 }), fc.integer({ min: 1, max: 64 }), fc.nat(70), async (prompt, maxTokens, skip) => {
        const signal = new AbortController().signal;
        const full = (await collect(fast.stream({ model: "m", prompt, maxTokens, signal }))).filter((c) => c.kind === "delta");
        const resumed = await collect(fast.stream({ model: "m", prompt, maxTokens, signal, skip }));
        expect(resumed.filter((c) => c.kind === "delta")).toEqual(full.slice(skip));
        expect(resumed.at(-1)).toMatchObject({ kind: "done", usage: { outputTokens: Math.min(maxTokens, 64) } });
        expect(full.map((c) => (c.kind === "delta" ? c.text : "")).join("")).toBe(simulatedPieces("m", prompt, Math.min(maxTokens, 64)).join(""));
      }),
      { numRuns: 50 },
    );
  });
  it("stops when the signal aborts", async () => {
    const slow = createSimulatedResponder({ tokensPerSec: 1000, maxTokens: 64 });
    const ac = new AbortController();
    const seen: ResponderChunk[] = [];
    await expect(
      (async () => {
        for await (const c of slow.stream({ model: "sim-1", prompt: "x", maxTokens: 64, signal: ac.signal })) {
          seen.push(c);
          if (seen.length === 2) ac.abort();
        }
      })(),
    ).rejects.toThrow();
    expect(seen).toHaveLength(2);
    expect(seen.every((c) => c.kind === "delta")).toBe(true);
  });
  it("the push form (start) gives exactly the chunks of the pull form, and nothing after stop", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 20 }), fc.integer({ min: 1, max: 64 }), fc.nat(70), async (prompt, maxTokens, skip) => {
        const pulled = await collect(fast.stream({ model: "m", prompt, maxTokens, skip, signal: new AbortController().signal }));
        const pushed: ResponderChunk[] = [];
        await new Promise<void>((resolve, reject) => {
          fast.start!({ model: "m", prompt, maxTokens, skip }, { push: (c) => pushed.push(c), end: (f) => (f ? reject(f.cause as Error) : resolve()) });
        });
        expect(pushed).toEqual(pulled);
      }),
      { numRuns: 30 },
    );
    const slow = createSimulatedResponder({ tokensPerSec: 1000, maxTokens: 64 });
    const pushed: ResponderChunk[] = [];
    let ended = false;
    const handle = slow.start!({ model: "sim-1", prompt: "x", maxTokens: 64 }, { push: (c) => pushed.push(c), end: () => (ended = true) });
    await new Promise((r) => setTimeout(r, 10));
    handle.stop();
    const seen = pushed.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(pushed).toHaveLength(seen);
    expect(ended).toBe(false);
  });
  it("bills an interrupted reply the way a completed one counts: one token per piece", async () => {
    const out = await collect(fast.stream({ model: "sim-1", prompt: "abc", maxTokens: 7, signal: new AbortController().signal }));
    const text = out.map((c) => (c.kind === "delta" ? c.text : "")).join("");
    expect(fast.usageSoFar("abc", 7, text)).toEqual((out.at(-1) as { usage: unknown }).usage);
    expect(fast.usageSoFar("abc", 3, "x y z")).toEqual({ inputTokens: estimatePromptTokens("abc"), outputTokens: 3 });
  });
  it("refuses nonsense options", () => {
    expect(() => createSimulatedResponder({ tokensPerSec: 0, maxTokens: 1 })).toThrow();
    expect(() => createSimulatedResponder({ tokensPerSec: 1, maxTokens: 0 })).toThrow();
  });
});

function streamOf(parts: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const p of parts) c.enqueue(enc.encode(p));
      c.close();
    },
  });
}

async function sse(parts: string[]): Promise<string[]> {
  const out: string[] = [];
  for await (const d of readSseData(streamOf(parts))) out.push(d);
  return out;
}

describe("SSE data reader", () => {
  it("reads data lines, joins multi-line data, skips comments and other fields", async () => {
    expect(await sse([": ping\n\nevent: x\ndata: a\ndata: b\nid: 1\n\ndata:c\n\ndata: [DONE]\n\n"])).toEqual(["a\nb", "c", "[DONE]"]);
  });
  it("accepts CRLF and CR line ends and a last event without a blank line", async () => {
    expect(await sse(["data: 1\r\n\r\ndata: 2\r\rdata: 3"])).toEqual(["1", "2", "3"]);
  });
  it("any chunking of the byte stream gives the same events (including split CRLF and UTF-8)", async () => {
    const text = 'data: {"x":"é😀"}\r\n\r\n: c\ndata: two\ndata: lines\n\ndata: [DONE]\r\n\r\n';
    const bytes = new TextEncoder().encode(text);
    const expected = await sse([text]);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), async (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        const chunks = points.slice(1).map((end, i) => bytes.slice(points[i], end));
        const out: string[] = [];
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            for (const ch of chunks) c.enqueue(ch);
            c.close();
          },
        });
        for await (const d of readSseData(body)) out.push(d);
        expect(out).toEqual(expected);
      }),
      { numRuns: 100 },
    );
  });
});
