import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { toMarkdown } from "./markdown.js";
import { renderChart } from "./svg.js";
import type { BenchReport } from "./types.js";

/** Writes report.json, report.md and report.svg into `dir`; returns their paths. */
export function writeReport(dir: string, report: BenchReport): { json: string; md: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const paths = { json: join(dir, "report.json"), md: join(dir, "report.md"), svg: join(dir, "report.svg") };
  writeFileSync(paths.json, JSON.stringify(report, null, 2) + "\n");
  writeFileSync(paths.md, toMarkdown(report));
  writeFileSync(paths.svg, renderChart(report.title, report.runs.map((r) => ({ name: r.name, points: r.series }))));
  return paths;
}
