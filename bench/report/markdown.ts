import type { LatencySummary } from "../lib/histogram.js";
import type { BenchReport, RunResult } from "./types.js";

/** The Markdown table a run prints and docs/benchmarks.md quotes. Empty cells are "–", never 0. */
const dash = "–";
const ms = (v: number | null | undefined): string => (v === null || v === undefined ? dash : v.toFixed(1));
const num = (v: number | null | undefined, digits = 0): string =>
  v === null || v === undefined || !Number.isFinite(v) ? dash : v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const lat = (s: LatencySummary | null): string => (s && s.count > 0 ? `${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.p99)}` : dash);

export function runRow(r: RunResult): string {
  const arrived = r.expected && r.expected > 0 ? `${((100 * r.delivered) / r.expected).toFixed(2)} %` : dash;
  const errors = Object.entries(r.errors)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  return `| ${[
    r.name,
    r.transport,
    num(r.clients),
    num(r.conversations),
    num(r.offeredRate),
    num(r.deliveredPerSec),
    arrived,
    lat(r.appendToClient),
    lat(r.sendToFirstDelta),
    r.serverCpuShare === null ? dash : `${(100 * r.serverCpuShare).toFixed(0)} %`,
    num(r.serverCpuMicrosPerDelivery, 1),
    r.serverRssBytes === null ? dash : num(r.serverRssBytes / 1048576, 0),
    r.clientCpuShare === null ? dash : `${(100 * r.clientCpuShare).toFixed(0)} %`,
    errors || dash,
  ].join(" | ")} |`;
}

export const RUN_HEADER = [
  "| server | transport | clients | conversations | offered rate/s | delivered/s | arrived | append→client p50 / p95 / p99 ms | send→first delta p50 / p95 / p99 ms | server CPU | server CPU µs/delivery | server RSS MB | client CPU | errors |",
  "|---|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|",
].join("\n");

export function toMarkdown(report: BenchReport): string {
  const lines = [
    `## ${report.title}`,
    "",
    `${report.startedAt} · ${report.machine.cpus} cores · load average ${report.machine.loadAvg.map((l) => l.toFixed(1)).join(" ")} · node ${report.machine.node}`,
    "",
    RUN_HEADER,
    ...report.runs.map(runRow),
  ];
  const ratios = Object.entries(report.ratios);
  if (ratios.length > 0) {
    lines.push("", "| ratio | value |", "|---|---:|");
    for (const [k, v] of ratios) lines.push(`| ${k} | ${v === null || !Number.isFinite(v) ? dash : v.toFixed(2)} |`);
  }
  if (report.notes.length > 0) lines.push("", ...report.notes.map((n) => `- ${n}`));
  return lines.join("\n") + "\n";
}
