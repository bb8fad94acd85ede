import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseBenchOptions } from "../../bench/chat/options.js";
import { firstDeltaMessageId, offsetMillis, splitSse } from "../../bench/clients/frames.js";
import { Histogram, percentile } from "../../bench/lib/histogram.js";
import { isLoopbackHostname, requireLoopbackUrl } from "../../bench/lib/loopback.js";
import { toMarkdown } from "../../bench/report/markdown.js";
import { escapeXml, niceMax, renderBars, renderChart } from "../../bench/report/svg.js";
import type { BenchReport, RunResult } from "../../bench/report/types.js";

describe("percentiles", () => {
  it("nearest rank on raw samples", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile([], 50)).toBeNull();
    expect(() => percentile(xs, 101)).toThrow(RangeError);
  });

  it("the histogram agrees with the raw samples to within one bucket, and merges", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50_000 }), { minLength: 1, maxLength: 300 }), fc.constantFrom(50, 95, 99, 100), (tenths, p) => {
        const samples = tenths.map((t) => t / 10);
        const a = new Histogram();
        const b = new Histogram();
        samples.forEach((s, i) => (i % 2 ? a : b).record(s));
        a.merge(b);
        expect(a.total).toBe(samples.length);
        expect(a.percentile(p)).toBeCloseTo(percentile(samples, p) as number, 5);
      }),
      { numRuns: 50 },
    );
  });

  it("survives IPC as sparse pairs", () => {
    const h = new Histogram();
    [1, 1, 2, 300].forEach((v) => h.record(v));
    const back = new Histogram();
    back.addPairs(JSON.parse(JSON.stringify(h.toPairs())) as Array<[number, number]>);
    expect(back.percentile(50)).toBe(1);
    expect(back.percentile(100)).toBe(300);
    expect(new Histogram().percentile(50)).toBeNull();
  });
});

describe("frame parsing", () => {
  const env = (type: string, data: unknown): string => JSON.stringify({ conversationId: "c", offset: "1732212345678-3", version: 4, type, at: "x", data });
  it("extracts the offset's milliseconds", () => {
    expect(offsetMillis(env("assistant.delta", {}))).toBe(1732212345678);
    expect(offsetMillis(`42["chat_event",${env("x", {})},"1732212345678-3"]`)).toBe(1732212345678);
    expect(offsetMillis("{}")).toBeNaN();
  });
  it("recognises the first delta of a reply only", () => {
    expect(firstDeltaMessageId(env("assistant.delta", { messageId: "r1", index: 0, text: "a" }))).toBe("r1");
    expect(firstDeltaMessageId(env("assistant.delta", { messageId: "r1", index: 10, text: "a" }))).toBeUndefined();
    expect(firstDeltaMessageId(env("assistant.started", { messageId: "r1", index: 0 }))).toBeUndefined();
  });
  it("splits SSE events across chunk boundaries", () => {
    const a = splitSse("id: 1\nevent: x\ndata: {\"a\":1}\n\n: ping\n\nid: 2\ndata: {\"b\"");
    expect(a.data).toEqual(['{"a":1}']);
    const b = splitSse(a.rest + ":2}\n\n");
    expect(b.data).toEqual(['{"b":2}']);
    expect(b.rest).toBe("");
  });
});

describe("arguments", () => {
  it("refuses anything but loopback", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect(isLoopbackHostname(h)).toBe(true);
    for (const h of ["10.0.0.1", "example.com", "127.0.0.1.nip.io", "0.0.0.0", "128.0.0.1", "127.0.0.300"]) expect(isLoopbackHostname(h)).toBe(false);
    expect(() => requireLoopbackUrl("http://192.168.1.2:8080")).toThrow(/loopback/);
    expect(() => requireLoopbackUrl("ftp://127.0.0.1")).toThrow(/http/);
    expect(requireLoopbackUrl("http://127.0.0.1:8080").port).toBe("8080");
  });

  it("validates bounds and names the flag", () => {
    expect(() => parseBenchOptions({ url: "http://10.1.1.1:8080", spawn: true })).toThrow(/^--url: .*loopback/);
    expect(() => parseBenchOptions({ spawn: true, clients: "100000" })).toThrow(/^--clients/);
    expect(() => parseBenchOptions({ spawn: true, duration: "3600" })).toThrow(/^--duration/);
    expect(() => parseBenchOptions({ spawn: true, clients: "5", conversations: "10" })).toThrow(/^--conversations/);
    expect(() => parseBenchOptions({ spawn: false })).toThrow(/^--token/);
    expect(() => parseBenchOptions({ spawn: true, redisUrl: "redis://10.0.0.5:6379" })).toThrow(/^--redis-url/);
    expect(() => parseBenchOptions({ spawn: true, transport: "carrier-pigeon" })).toThrow(/^--transport/);
    const o = parseBenchOptions({ spawn: true, clients: "20", conversations: "4", rate: "2.5" });
    expect(o).toMatchObject({ clients: 20, conversations: 4, rate: 2.5, transport: "mix", baseline: "none", url: "http://127.0.0.1:8080" });
  });
});

const run = (name: string, over: Partial<RunResult> = {}): RunResult => ({
  name,
  transport: "sse",
  clients: 10,
  conversations: 2,
  offeredRate: 5,
  seconds: 3,
  delivered: 990,
  deliveredPerSec: 330,
  expected: 1000,
  appendToClient: { count: 990, p50: 1.2, p95: 3.4, p99: 5.6, max: 9 },
  sendToFirstDelta: null,
  serverCpuShare: 0.25,
  serverCpuMicrosPerDelivery: 12.5,
  serverRssBytes: 100 * 1048576,
  clientCpuShare: null,
  errors: { closed: 0, "send-CONFLICT": 2 },
  series: [
    { t: 1, deliveriesPerSec: 300, p50: 1, p99: 5 },
    { t: 2, deliveriesPerSec: 360, p50: null, p99: null },
  ],
  ...over,
});

describe("report writers", () => {
  const report: BenchReport = {
    title: "t <&> x",
    startedAt: "2026-11-22T00:00:00Z",
    machine: { cpus: 2, loadAvg: [1, 2, 3], node: "v20" },
    options: {},
    runs: [run("a"), run("b", { expected: null, serverCpuShare: null })],
    ratios: { "x / y": 1.234, missing: null },
    notes: ["busy machine"],
  };

  it("writes a Markdown table with one row per run and dashes for unknowns", () => {
    const md = toMarkdown(report);
    const rows = md.split("\n").filter((l) => l.startsWith("| a |") || l.startsWith("| b |"));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain("99.00 %");
    expect(rows[0]).toContain("1.2 / 3.4 / 5.6");
    expect(rows[0]).toContain("send-CONFLICT 2");
    expect(rows[0]).not.toContain("closed");
    expect(rows[1]).toContain("| – |");
    expect(md).toContain("| x / y | 1.23 |");
    expect(md).toContain("| missing | – |");
    expect(md).toContain("- busy machine");
    // every table row has the header's column count
    const header = md.split("\n").find((l) => l.startsWith("| server"));
    const cols = (l: string): number => l.split("|").length;
    for (const r of rows) expect(cols(r)).toBe(cols(header ?? ""));
  });

  it("writes well-formed SVG with escaped text and gaps where a percentile is missing", () => {
    const svg = renderChart(report.title, report.runs.map((r) => ({ name: r.name, points: r.series })));
    expect(svg.startsWith("<?xml")).toBe(true);
    expect(svg).toContain("t &lt;&amp;&gt; x");
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    expect((svg.match(/<svg/g) ?? []).length).toBe((svg.match(/<\/svg>/g) ?? []).length);
    expect(svg).toContain("a p99");
    const bars = renderBars("max", "x/s", ["L1", "L2"], [{ name: "s1", values: [5, null] }]);
    expect(bars).not.toMatch(/NaN|undefined/);
    expect(escapeXml(`"'`)).toBe("&quot;&apos;");
    expect([niceMax(0), niceMax(7), niceMax(12), niceMax(4000)]).toEqual([1, 10, 20, 5000]);
  });
});
