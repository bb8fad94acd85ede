import { Histogram, summarize } from "./histogram.js";
import { cpuShare, sampleProc, type ProcSample } from "./proc.js";
import type { ClientPool } from "../clients/pool.js";
import type { RunResult, SeriesPoint } from "../report/types.js";

/**
 * One measured interval over one or more client pools: totals reset at the start, a series point
 * and a live progress line each second, server and client CPU from /proc at both ends.
 */
export interface MeasureOptions {
  pools: ClientPool[];
  seconds: number;
  serverPid: number | undefined;
  /** Runs inside the interval (e.g. the appender); the interval lasts at least `seconds`. */
  during?: () => Promise<void>;
  /** Extra time after `during` ends for in-flight events to arrive (counted). */
  drainMs?: number;
  label: string;
  progress?: boolean;
}

export interface Measured {
  delivered: number;
  elapsedSec: number;
  lat: Histogram;
  first: Histogram;
  errors: Record<string, number>;
  series: SeriesPoint[];
  serverCpuShare: number | null;
  serverCpuMicros: number | null;
  serverRssBytes: number | null;
  clientCpuShare: number | null;
}

const clientCpu = (pools: ClientPool[]): ProcSample[] => pools.flatMap((p) => p.procSamples());

export async function measure(o: MeasureOptions): Promise<Measured> {
  for (const p of o.pools) p.reset();
  const windowLat = new Histogram();
  let windowCount = 0;
  const saved = o.pools.map((p) => p.onTick);
  for (const p of o.pools) {
    const prev = p.onTick;
    p.onTick = (m) => {
      prev?.(m);
      windowLat.addPairs(m.lat);
      windowCount += m.received;
    };
  }
  const s0 = o.serverPid ? sampleProc(o.serverPid) : undefined;
  const c0 = clientCpu(o.pools);
  const t0 = Date.now();
  const series: SeriesPoint[] = [];
  let lastT = t0;
  const second = setInterval(() => {
    const now = Date.now();
    const dt = (now - lastT) / 1000;
    lastT = now;
    series.push({ t: Math.round((now - t0) / 100) / 10, deliveriesPerSec: Math.round(windowCount / dt), p50: windowLat.percentile(50), p99: windowLat.percentile(99) });
    if (o.progress !== false) {
      const connected = o.pools.reduce((a, p) => a + p.connected, 0);
      const total = o.pools.reduce((a, p) => a + p.totals.received, 0);
      const last = series[series.length - 1];
      process.stderr.write(
        `\r${o.label} t=${((now - t0) / 1000).toFixed(0)}s clients=${connected} delivered=${total} (${last?.deliveriesPerSec ?? 0}/s) p50=${last?.p50 ?? "–"}ms p99=${last?.p99 ?? "–"}ms   `,
      );
    }
    windowLat.clear();
    windowCount = 0;
  }, 1000);
  const minEnd = new Promise((r) => setTimeout(r, o.seconds * 1000));
  await Promise.all([minEnd, o.during?.()]);
  // The drain is measured too: a server that lags keeps delivering (and spending CPU) after the
  // last append, and those deliveries are counted, so its CPU must be as well.
  if (o.drainMs) await new Promise((r) => setTimeout(r, o.drainMs));
  const s1 = o.serverPid ? sampleProc(o.serverPid) : undefined;
  const c1 = clientCpu(o.pools);
  // Workers report every 500 ms: wait for the last report covering the interval.
  await new Promise((r) => setTimeout(r, 600));
  clearInterval(second);
  o.pools.forEach((p, i) => (p.onTick = saved[i]));
  if (o.progress !== false) process.stderr.write("\n");
  const elapsedSec = (Date.now() - t0) / 1000;
  const lat = new Histogram();
  const first = new Histogram();
  const errors: Record<string, number> = {};
  let delivered = 0;
  for (const p of o.pools) {
    delivered += p.totals.received;
    lat.merge(p.totals.lat);
    first.merge(p.totals.first);
    for (const [k, v] of Object.entries(p.totals.errors)) errors[k] = (errors[k] ?? 0) + v;
  }
  const wall = s0 && s1 ? (s1.at - s0.at) * 1000 : 0;
  const clientMicros = c1.reduce((a, x) => a + x.cpuMicros, 0) - c0.reduce((a, x) => a + x.cpuMicros, 0);
  return {
    delivered,
    elapsedSec,
    lat,
    first,
    errors,
    series,
    serverCpuShare: s0 && s1 ? cpuShare(s0, s1) : null,
    serverCpuMicros: s0 && s1 ? s1.cpuMicros - s0.cpuMicros : null,
    serverRssBytes: s1?.rssBytes ?? null,
    clientCpuShare: wall > 0 ? clientMicros / wall : null,
  };
}

/** A RunResult from a measurement; `seconds` is the offered interval (the denominator of rates). */
export function toRunResult(
  m: Measured,
  o: { name: string; transport: string; clients: number; conversations: number; offeredRate: number; seconds: number; expected: number | null; firstDelta: boolean },
): RunResult {
  return {
    name: o.name,
    transport: o.transport,
    clients: o.clients,
    conversations: o.conversations,
    offeredRate: o.offeredRate,
    seconds: o.seconds,
    delivered: m.delivered,
    deliveredPerSec: Math.round(m.delivered / o.seconds),
    expected: o.expected,
    appendToClient: summarize(m.lat),
    sendToFirstDelta: o.firstDelta ? summarize(m.first) : null,
    serverCpuShare: m.serverCpuShare,
    serverCpuMicrosPerDelivery: m.serverCpuMicros !== null && m.delivered > 0 ? m.serverCpuMicros / m.delivered : null,
    serverRssBytes: m.serverRssBytes,
    clientCpuShare: m.clientCpuShare,
    errors: m.errors,
    series: m.series,
  };
}

/**
 * Waits until no client has received anything for `quietMs` (at most `maxMs`): a server that fell
 * behind in the previous interval is still delivering its backlog, and those deliveries must not be
 * counted (or timed) in the next one. Resolves with whether it went quiet.
 */
export async function quiesce(pools: ClientPool[], quietMs = 1000, maxMs = 30_000): Promise<boolean> {
  const saved = pools.map((p) => p.onTick);
  let last = Date.now();
  for (const p of pools) {
    const prev = p.onTick;
    p.onTick = (m) => {
      prev?.(m);
      if (m.received > 0) last = Date.now();
    };
  }
  const t0 = Date.now();
  try {
    while (Date.now() - t0 < maxMs) {
      await new Promise((r) => setTimeout(r, 250));
      if (Date.now() - last >= quietMs) return true;
    }
    return false;
  } finally {
    pools.forEach((p, i) => (p.onTick = saved[i]));
  }
}
