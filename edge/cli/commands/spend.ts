import type { Command } from "commander";
import { z } from "zod";
import { openDatabase } from "../../../projections/db.js";
import { SPEND_GROUPS, spend, SpendQuery, type SpendBody } from "../../../projections/queries.js";
import { withContext } from "../context.js";
import { parseArgs } from "../stream-args.js";

/**
 * `tributary spend --from DATE --to DATE --group-by user|model|day|project [--tenant T]
 * [--format table|json|csv]`. `json` prints exactly the GET /v1/spend body (rows carry `tenantId`
 * when no tenant is given, since user ids are only unique within a tenant).
 */
const SpendArgs = z.object({
  from: z.string(),
  to: z.string(),
  groupBy: z.enum(SPEND_GROUPS),
  tenant: z.string().min(1).max(256).optional(),
  user: z.string().min(1).max(256).optional(),
  format: z.enum(["table", "json", "csv"]),
});

const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function renderSpend(body: SpendBody, groupBy: string, format: "table" | "json" | "csv"): string {
  if (format === "json") return `${JSON.stringify(body)}\n`;
  const withTenant = body.rows.some((r) => r.tenantId !== undefined);
  const cols = [...(withTenant ? ["tenantId"] : []), groupBy, "messages", "inputTokens", "outputTokens", "costMicros"];
  const lines = body.rows.map((r) => cols.map((c) => (r as unknown as Record<string, unknown>)[c]));
  const totals = [...(withTenant ? [""] : []), "TOTAL", body.totals.messages, body.totals.inputTokens, body.totals.outputTokens, body.totals.costMicros];
  if (format === "csv") return [cols, ...lines].map((l) => l.map(csvCell).join(",")).join("\n") + "\n";
  const all = [cols, ...lines, totals].map((l) => l.map((v) => (v === null || v === undefined ? "-" : String(v))));
  const widths = cols.map((_, i) => Math.max(...all.map((l) => (l[i] ?? "").length)));
  const fmt = (l: string[]) => l.map((v, i) => (i < (withTenant ? 2 : 1) ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join("  ");
  return [fmt(all[0] ?? []), ...all.slice(1).map(fmt)].join("\n") + "\n";
}

export function registerSpend(program: Command): void {
  program
    .command("spend")
    .description("spend report from the read model (UTC days, both dates inclusive)")
    .requiredOption("--from <date>", "first day, YYYY-MM-DD")
    .requiredOption("--to <date>", "last day, YYYY-MM-DD")
    .requiredOption("--group-by <group>", "user, model, day or project")
    .option("--tenant <tenant>", "only this tenant")
    .option("--user <user>", "only this user")
    .option("--format <format>", "table, json or csv", "table")
    .action(async (opts: { from: string; to: string; groupBy: string; tenant?: string; user?: string; format: string }) => {
      const a = parseArgs(SpendArgs, opts);
      const q = parseArgs(SpendQuery, {
        from: a.from,
        to: a.to,
        groupBy: a.groupBy,
        ...(a.tenant === undefined ? {} : { tenantId: a.tenant }),
        ...(a.user === undefined ? {} : { userId: a.user }),
      }, { tenantId: "--tenant", userId: "--user" });
      await withContext(async (ctx) => {
        const opened = await openDatabase(ctx.config, { max: 1 });
        ctx.onClose(() => opened.close());
        process.stdout.write(renderSpend(await spend(opened.db, q), a.groupBy, a.format));
      });
    });
}
