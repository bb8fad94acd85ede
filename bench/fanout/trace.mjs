/**
 * Pipeline trace of one server process of the fan-out bench (`run.ts --trace DIR` loads it with
 * `--import`): every XREAD round of the fan-out (or of the bare ceiling) with its timestamps and
 * the ids it returned, and every GC pause. Written to DIR/trace-<pid>.json when the process exits.
 * Together with the clients' DIR/tail-<pid>.json (slow deliveries) it lets `attribute.ts` split
 * each slow delivery into append → XREAD return, XREAD return → publish, and publish → client.
 *
 * Plain .mjs (no TypeScript): it runs before tsx's loader is registered in `tributary edge`.
 */
import { subscribe } from "node:diagnostics_channel";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";

const DIR = process.env.BENCH_TRACE_DIR;
if (DIR) {
  const T0 = performance.timeOrigin;
  const MAX = 2_000_000;
  /** [start ms (epoch), duration ms, kind] */
  const gcs = [];
  /** Flat: [issued, replied, published] per round (epoch ms). */
  const rounds = [];
  /** Flat: [id, replied, published (epoch ms)] per entry. */
  const reads = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([T0 + e.startTime, e.duration, e.detail?.kind ?? 0]);
  }).observe({ entryTypes: ["gc"] });
  const onRound = (m) => {
    if (rounds.length < MAX) rounds.push(T0 + m.issuedAt, T0 + m.repliedAt, T0 + m.publishedAt);
    const at = T0 + m.repliedAt;
    const done = T0 + m.publishedAt;
    for (const id of m.ids) if (reads.length < MAX) reads.push(id, at, done);
  };
  subscribe("tributary:fanout:read", onRound);
  subscribe("tributary:bench-follower:read", onRound);
  let written = false;
  const dump = () => {
    if (written) return;
    written = true;
    writeFileSync(join(DIR, `trace-${process.pid}.json`), JSON.stringify({ argv: process.argv.slice(1), gcs, rounds, reads }));
  };
  process.on("SIGTERM", dump);
  process.on("exit", dump);
}
