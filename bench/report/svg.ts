import type { SeriesPoint } from "./types.js";

/**
 * A two-panel line chart written by hand (no chart dependency): latency percentiles over time on
 * top, delivered events/s below, one colour per run. Plain SVG 1.1 that renders in browsers and in
 * GitHub's Markdown view.
 */
export interface ChartSeries {
  name: string;
  points: SeriesPoint[];
}

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const W = 760;
const PANEL_H = 220;
const M = { left: 64, right: 180, top: 34, bottom: 34 };

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] ?? c);
}

/** A "nice" upper bound for an axis (1, 2, 5 × 10^n) so tick labels read cleanly. */
export function niceMax(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * exp) return m * exp;
  return 10 * exp;
}

const fmt = (v: number): string => (v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(1)}`);

interface Panel {
  title: string;
  unit: string;
  top: number;
  lines: Array<{ name: string; colour: string; dash: boolean; pts: Array<[number, number]> }>;
}

function path(pts: Array<[number, number]>, x: (t: number) => number, y: (v: number) => number): string {
  return pts.map(([t, v], i) => `${i === 0 ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
}

function drawPanel(p: Panel, tMax: number): string {
  const plotW = W - M.left - M.right;
  const plotH = PANEL_H - M.top - M.bottom;
  const vMax = niceMax(Math.max(0, ...p.lines.flatMap((l) => l.pts.map(([, v]) => v))));
  const x = (t: number): number => M.left + (tMax > 0 ? (t / tMax) * plotW : 0);
  const y = (v: number): number => p.top + M.top + plotH - (v / vMax) * plotH;
  const out: string[] = [];
  out.push(`<text x="${M.left}" y="${p.top + 20}" font-size="14" font-weight="bold">${escapeXml(p.title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = (vMax * i) / 4;
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${M.left}" x2="${M.left + plotW}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${yy}" font-size="11" text-anchor="end" dominant-baseline="middle">${fmt(v)}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const t = (tMax * i) / 4;
    out.push(`<text x="${x(t).toFixed(1)}" y="${p.top + PANEL_H - M.bottom + 16}" font-size="11" text-anchor="middle">${fmt(t)} s</text>`);
  }
  out.push(`<text x="14" y="${p.top + M.top + plotH / 2}" font-size="11" transform="rotate(-90 14 ${p.top + M.top + plotH / 2})" text-anchor="middle">${escapeXml(p.unit)}</text>`);
  out.push(`<rect x="${M.left}" y="${p.top + M.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  p.lines.forEach((l, i) => {
    if (l.pts.length > 0) {
      out.push(`<path d="${path(l.pts, x, y)}" fill="none" stroke="${l.colour}" stroke-width="1.8"${l.dash ? ' stroke-dasharray="5,3"' : ""}/>`);
    }
    const ly = p.top + M.top + 6 + i * 16;
    out.push(`<line x1="${W - M.right + 12}" x2="${W - M.right + 34}" y1="${ly}" y2="${ly}" stroke="${l.colour}" stroke-width="2"${l.dash ? ' stroke-dasharray="5,3"' : ""}/>`);
    out.push(`<text x="${W - M.right + 40}" y="${ly}" font-size="11" dominant-baseline="middle">${escapeXml(l.name)}</text>`);
  });
  return out.join("\n");
}

export function renderChart(title: string, series: ChartSeries[]): string {
  const tMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.t)));
  const colour = (i: number): string => COLOURS[i % COLOURS.length] ?? "#000";
  const latency: Panel = {
    title: "append → client latency (ms): p50 solid, p99 dashed",
    unit: "ms",
    top: 30,
    lines: series.flatMap((s, i) => [
      { name: `${s.name} p50`, colour: colour(i), dash: false, pts: s.points.filter((p) => p.p50 !== null).map((p) => [p.t, p.p50 as number] as [number, number]) },
      { name: `${s.name} p99`, colour: colour(i), dash: true, pts: s.points.filter((p) => p.p99 !== null).map((p) => [p.t, p.p99 as number] as [number, number]) },
    ]),
  };
  const throughput: Panel = {
    title: "delivered events/s",
    unit: "events/s",
    top: 30 + PANEL_H,
    lines: series.map((s, i) => ({ name: s.name, colour: colour(i), dash: false, pts: s.points.map((p) => [p.t, p.deliveriesPerSec] as [number, number]) })),
  };
  const H = 30 + 2 * PANEL_H + 10;
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" font-size="15" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`,
    drawPanel(latency, tMax),
    drawPanel(throughput, tMax),
    `</svg>`,
    "",
  ].join("\n");
}

/** A grouped bar chart (one group per label, one bar per series), for step-search summaries. */
export function renderBars(title: string, unit: string, labels: string[], bars: Array<{ name: string; values: Array<number | null> }>): string {
  const H = 300;
  const plotW = W - M.left - M.right;
  const plotH = H - 40 - M.top - M.bottom;
  const vMax = niceMax(Math.max(0, ...bars.flatMap((b) => b.values.map((v) => v ?? 0))));
  const groupW = plotW / Math.max(1, labels.length);
  const barW = (groupW * 0.8) / Math.max(1, bars.length);
  const y = (v: number): number => 40 + M.top + plotH - (v / vMax) * plotH;
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" font-size="15" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (vMax * i) / 4;
    out.push(`<line x1="${M.left}" x2="${M.left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${y(v).toFixed(1)}" font-size="11" text-anchor="end" dominant-baseline="middle">${fmt(v)}</text>`);
  }
  out.push(`<text x="14" y="${40 + M.top + plotH / 2}" font-size="11" transform="rotate(-90 14 ${40 + M.top + plotH / 2})" text-anchor="middle">${escapeXml(unit)}</text>`);
  labels.forEach((label, g) => {
    const gx = M.left + g * groupW + groupW * 0.1;
    bars.forEach((b, i) => {
      const v = b.values[g];
      if (v === null || v === undefined) return;
      out.push(`<rect x="${(gx + i * barW).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(y(0) - y(v)).toFixed(1)}" fill="${COLOURS[i % COLOURS.length]}"/>`);
    });
    out.push(`<text x="${(gx + groupW * 0.4).toFixed(1)}" y="${H - M.bottom + 10}" font-size="11" text-anchor="middle">${escapeXml(label)}</text>`);
  });
  bars.forEach((b, i) => {
    const ly = 40 + M.top + 6 + i * 16;
    out.push(`<rect x="${W - M.right + 12}" y="${ly - 5}" width="12" height="10" fill="${COLOURS[i % COLOURS.length]}"/>`);
    out.push(`<text x="${W - M.right + 30}" y="${ly}" font-size="11" dominant-baseline="middle">${escapeXml(b.name)}</text>`);
  });
  out.push(`</svg>`, "");
  return out.join("\n");
}
