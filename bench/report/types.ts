import type { LatencySummary } from "../lib/histogram.js";

/** One second of a run, for the chart. */
export interface SeriesPoint {
  /** Seconds since the run's measurement began. */
  t: number;
  deliveriesPerSec: number;
  p50: number | null;
  p99: number | null;
}

/** One workload against one server. */
export interface RunResult {
  name: string;
  transport: string;
  clients: number;
  conversations: number;
  /** Messages/s (chat) or appends/s (fan-out) offered. */
  offeredRate: number;
  seconds: number;
  delivered: number;
  deliveredPerSec: number;
  /** Deliveries that should have arrived, when the workload knows (fan-out); null otherwise. */
  expected: number | null;
  appendToClient: LatencySummary;
  sendToFirstDelta: LatencySummary | null;
  serverCpuShare: number | null;
  serverCpuMicrosPerDelivery: number | null;
  serverRssBytes: number | null;
  clientCpuShare: number | null;
  errors: Record<string, number>;
  series: SeriesPoint[];
}

export interface BenchReport {
  title: string;
  startedAt: string;
  machine: { cpus: number; loadAvg: number[]; node: string };
  options: Record<string, unknown>;
  runs: RunResult[];
  /** name → value (e.g. "tributary / socket.io deliveries/s"). */
  ratios: Record<string, number | null>;
  notes: string[];
}
