/**
 * Where a slow delivery's time went (issue 5's latency tail), from a `run.ts --trace DIR` run:
 *
 *   npx tsx bench/fanout/attribute.ts DIR [--min 20]
 *
 * For every delivery a client saw at least `--min` ms after its append, joined by stream id with the
 * server's XREAD round that returned it:
 *   redis→js   append (the id's ms) → the XREAD reply reaching JS (Redis, the socket, the server's
 *              event loop being busy or descheduled)
 *   js         reply → every entry of the round published (decode, encode, hand-over)
 *   →client    published → the client's receipt (uWS's send, the kernel, the client process)
 * and whether a GC pause of the server fell inside it. Servers ran one after another, so each
 * client record belongs to the server whose rounds span its arrival time.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const argv = process.argv.slice(2);
const dir = argv[0];
if (!dir) throw new Error("usage: attribute.ts DIR [--min 20]");
const minAt = argv.indexOf("--min");
const MIN = minAt >= 0 ? Number(argv[minAt + 1]) : 20;

interface Trace {
  argv: string[];
  gcs: Array<[number, number, number]>;
  rounds: number[];
  reads: Array<string | number>;
}
const files = readdirSync(dir);
const traces = files.filter((f) => f.startsWith("trace-")).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Trace);
const tails = files.filter((f) => f.startsWith("tail-")).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Array<string | number>);

const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};
const msOf = (id: string): number => Number(id.slice(0, id.indexOf("-")));
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "–");

const rows: string[] = [
  `slow deliveries (≥ ${MIN} ms append → client), split by the server's XREAD round that returned them; medians / p90 in ms`,
  "",
  "| server | slow deliveries | of them matched | latency | redis→js | js | →client | share with a server GC inside | GC pauses of the server (count, total ms, max ms) |",
  "|---|---:|---:|---|---|---|---|---:|---|",
];
// In run order (the order of --servers; A/B, which publish no rounds, are left out).
const ordered = traces.filter((x) => x.rounds.length > 0).sort((x, y) => (x.rounds[0] as number) - (y.rounds[0] as number));
for (const [n, t] of ordered.entries()) {
  const tr = t.argv.indexOf("--transport");
  const name = `${n + 1}. ${tr >= 0 ? `bare ${t.argv[tr + 1]} (${t.argv[tr + 1] === "ws" ? "C" : "D"})` : "tributary edge"}`;
  const first = t.rounds[0] as number;
  const last = t.rounds[t.rounds.length - 1] as number;
  const read = new Map<string, [number, number]>();
  for (let i = 0; i + 2 < t.reads.length; i += 3) if (!read.has(t.reads[i] as string)) read.set(t.reads[i] as string, [t.reads[i + 1] as number, t.reads[i + 2] as number]);
  const gcs = [...t.gcs].sort((a, b) => a[0] - b[0]);
  const lat: number[] = [];
  const a: number[] = [];
  const b: number[] = [];
  const c: number[] = [];
  let slow = 0;
  let withGc = 0;
  for (const tail of tails) {
    for (let i = 0; i + 1 < tail.length; i += 2) {
      const id = tail[i] as string;
      const at = tail[i + 1] as number;
      if (at < first || at > last + 2000) continue;
      const appended = msOf(id);
      if (at - appended < MIN) continue;
      slow++;
      const r = read.get(id);
      if (!r) continue;
      lat.push(at - appended);
      a.push(r[0] - appended);
      b.push(r[1] - r[0]);
      c.push(at - r[1]);
      if (gcs.some(([s, d]) => s < at && s + d > appended)) withGc++;
    }
  }
  const gcTotal = gcs.filter(([s]) => s >= first && s <= last).reduce((x, [, d]) => x + d, 0);
  const gcIn = gcs.filter(([s]) => s >= first && s <= last);
  rows.push(
    `| ${name} | ${slow} | ${lat.length} | ${f1(pct(lat, 50))} / ${f1(pct(lat, 90))} | ${f1(pct(a, 50))} / ${f1(pct(a, 90))} | ${f1(pct(b, 50))} / ${f1(pct(b, 90))} | ${f1(pct(c, 50))} / ${f1(pct(c, 90))} | ${lat.length ? (withGc / lat.length).toFixed(2) : "–"} | ${gcIn.length}, ${gcTotal.toFixed(0)}, ${f1(Math.max(0, ...gcIn.map(([, d]) => d)))} |`,
  );
}
process.stdout.write(rows.join("\n") + "\n");
